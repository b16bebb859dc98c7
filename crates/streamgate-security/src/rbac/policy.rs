//! Access policies: who may use a route.

use streamgate_core::SecurityContext;

use super::Rbac;
use crate::AuthReason;

/// Who may use a route.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Anyone, with or without a credential.
    Public,
    /// Any authenticated principal.
    Authenticated,
    /// Principals holding the role (directly or by inheritance).
    Role(String),
    /// Principals holding the permission (directly, as a scope, or through a role).
    Permission(String),
    /// Principals satisfying at least one of the policies.
    Any(Vec<Policy>),
    /// Principals satisfying every one of the policies.
    All(Vec<Policy>),
}

impl Policy {
    /// [`Policy::Role`].
    #[must_use]
    pub fn role(role: impl Into<String>) -> Self {
        Self::Role(role.into())
    }

    /// [`Policy::Permission`].
    #[must_use]
    pub fn permission(permission: impl Into<String>) -> Self {
        Self::Permission(permission.into())
    }

    /// [`Policy::Any`].
    #[must_use]
    pub fn any(policies: impl IntoIterator<Item = Policy>) -> Self {
        Self::Any(policies.into_iter().collect())
    }

    /// [`Policy::All`].
    #[must_use]
    pub fn all(policies: impl IntoIterator<Item = Policy>) -> Self {
        Self::All(policies.into_iter().collect())
    }

    /// Judges a request's principal (`None` when unauthenticated).
    ///
    /// # Errors
    /// [`AuthReason::MissingCredentials`] (answer 401) when a principal is needed and there is
    /// none; [`AuthReason::MissingRole`] or [`AuthReason::MissingPermission`] (answer 403).
    pub fn evaluate(
        &self,
        context: Option<&SecurityContext>,
        rbac: &Rbac,
    ) -> Result<(), AuthReason> {
        match self {
            Policy::Public => Ok(()),
            Policy::Authenticated => context.map(|_| ()).ok_or(AuthReason::MissingCredentials),
            Policy::Role(role) => {
                let context = context.ok_or(AuthReason::MissingCredentials)?;
                if rbac.has_role(context, role) {
                    Ok(())
                } else {
                    Err(AuthReason::MissingRole)
                }
            }
            Policy::Permission(permission) => {
                let context = context.ok_or(AuthReason::MissingCredentials)?;
                if rbac.has_permission(context, permission) {
                    Ok(())
                } else {
                    Err(AuthReason::MissingPermission)
                }
            }
            Policy::Any(policies) => {
                let mut last = AuthReason::MissingPermission;
                for policy in policies {
                    match policy.evaluate(context, rbac) {
                        Ok(()) => return Ok(()),
                        // Without a principal, 401 invites the caller to authenticate.
                        Err(reason) if last != AuthReason::MissingCredentials => last = reason,
                        Err(_) => {}
                    }
                }
                Err(last)
            }
            Policy::All(policies) => policies
                .iter()
                .try_for_each(|policy| policy.evaluate(context, rbac)),
        }
    }
}
