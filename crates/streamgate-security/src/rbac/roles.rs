//! Roles, the permissions they grant, and which roles they inherit.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use streamgate_core::SecurityContext;

use crate::ConfigError;

/// One role: its permissions and the roles it inherits (with their permissions).
#[derive(Debug, Clone)]
#[must_use]
pub struct Role {
    name: String,
    permissions: Vec<String>,
    inherits: Vec<String>,
}

impl Role {
    /// A role named `name` with no permissions yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            permissions: Vec::new(),
            inherits: Vec::new(),
        }
    }

    /// Grants permissions.
    pub fn permissions<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        permissions: I,
    ) -> Self {
        self.permissions
            .extend(permissions.into_iter().map(Into::into));
        self
    }

    /// Inherits `role`: holders of this role also hold `role` and its permissions.
    pub fn inherits(mut self, role: impl Into<String>) -> Self {
        self.inherits.push(role.into());
        self
    }
}

/// The role table: roles -> permissions, with inheritance resolved once when built. Cheap to
/// clone.
///
/// ```
/// use streamgate_core::SecurityContext;
/// use streamgate_security::{Rbac, Role};
///
/// let rbac = Rbac::builder()
///     .role(Role::new("viewer").permissions(["items:read"]))
///     .role(Role::new("editor").inherits("viewer").permissions(["items:write"]))
///     .role(Role::new("admin").inherits("editor").permissions(["items:delete"]))
///     .build()
///     .unwrap();
/// let admin = SecurityContext::builder("u1").roles(["admin"]).build();
/// assert!(rbac.has_role(&admin, "viewer"));
/// assert!(rbac.has_permission(&admin, "items:read"));
/// let viewer = SecurityContext::builder("u2").roles(["viewer"]).build();
/// assert!(!rbac.has_permission(&viewer, "items:write"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    roles: Arc<HashMap<String, Grants>>,
}

#[derive(Debug, Default)]
struct Grants {
    /// The role itself and every role it inherits, transitively.
    roles: HashSet<String>,
    permissions: HashSet<String>,
}

/// Builds an [`Rbac`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RbacBuilder {
    roles: Vec<Role>,
}

impl Rbac {
    /// Starts an empty role table.
    pub fn builder() -> RbacBuilder {
        RbacBuilder::default()
    }

    /// Whether the principal holds `role`, directly or through inheritance.
    #[must_use]
    pub fn has_role(&self, context: &SecurityContext, role: &str) -> bool {
        context.roles().iter().any(|held| {
            held == role
                || self
                    .roles
                    .get(held)
                    .is_some_and(|grants| grants.roles.contains(role))
        })
    }

    /// Whether the principal holds `permission`: among its own permissions or scopes, or granted
    /// by one of its roles (inheritance included).
    #[must_use]
    pub fn has_permission(&self, context: &SecurityContext, permission: &str) -> bool {
        context.has_permission(permission)
            || context.has_scope(permission)
            || context.roles().iter().any(|held| {
                self.roles
                    .get(held)
                    .is_some_and(|grants| grants.permissions.contains(permission))
            })
    }

    /// Every permission the principal holds, sorted.
    #[must_use]
    pub fn permissions_of(&self, context: &SecurityContext) -> Vec<String> {
        let mut all: HashSet<&str> = context.permissions().iter().map(String::as_str).collect();
        for held in context.roles() {
            if let Some(grants) = self.roles.get(held) {
                all.extend(grants.permissions.iter().map(String::as_str));
            }
        }
        let mut all: Vec<String> = all.into_iter().map(str::to_owned).collect();
        all.sort_unstable();
        all
    }
}

impl RbacBuilder {
    /// Adds a role.
    pub fn role(mut self, role: Role) -> Self {
        self.roles.push(role);
        self
    }

    /// Resolves inheritance.
    ///
    /// # Errors
    /// A role defined twice, a role inheriting an undefined role, or an inheritance cycle; the
    /// message names the role.
    pub fn build(self) -> Result<Rbac, ConfigError> {
        let mut defined: HashMap<&str, &Role> = HashMap::new();
        for role in &self.roles {
            if defined.insert(role.name.as_str(), role).is_some() {
                return Err(ConfigError::new(format!(
                    "role `{}` is defined twice",
                    role.name
                )));
            }
        }
        for role in &self.roles {
            for parent in &role.inherits {
                if !defined.contains_key(parent.as_str()) {
                    return Err(ConfigError::new(format!(
                        "role `{}` inherits `{parent}`, which is not defined",
                        role.name
                    )));
                }
            }
        }
        let mut resolved = HashMap::new();
        for role in &self.roles {
            let mut grants = Grants::default();
            let mut stack = vec![role.name.as_str()];
            while let Some(name) = stack.pop() {
                if !grants.roles.insert(name.to_owned()) {
                    continue;
                }
                let current = defined[name];
                grants
                    .permissions
                    .extend(current.permissions.iter().cloned());
                for parent in &current.inherits {
                    if parent == &role.name {
                        return Err(ConfigError::new(format!(
                            "role `{}` inherits itself through `{name}`",
                            role.name
                        )));
                    }
                    stack.push(parent);
                }
            }
            resolved.insert(role.name.clone(), grants);
        }
        Ok(Rbac {
            roles: Arc::new(resolved),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_and_unknown_parents_are_refused_by_name() {
        let err = Rbac::builder()
            .role(Role::new("a").inherits("b"))
            .role(Role::new("b").inherits("a"))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("inherits itself"), "{err}");
        let err = Rbac::builder()
            .role(Role::new("a").inherits("ghost"))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("`ghost`"), "{err}");
    }
}
