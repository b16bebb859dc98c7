//! Where a token keeps roles, permissions, scopes and the wallet address.

use serde_json::{Map, Value};
use streamgate_core::{EthAddress, SecurityContext};

use crate::AuthReason;

/// Where the claims read into the [`SecurityContext`] live, as dotted paths through nested objects
/// (`roles`, `realm_access.roles`); every `.` separates two object keys.
///
/// A list claim may be a JSON array of strings or one space-separated string. The defaults follow
/// common identity providers: `sub`, `roles`, `permissions`, `scope`, and `wallet`.
#[derive(Debug, Clone)]
pub struct ClaimMapping {
    pub(crate) subject: Vec<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) permissions: Vec<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) wallet: Vec<String>,
    pub(crate) wallet_required: bool,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            subject: split("sub"),
            roles: split("roles"),
            permissions: split("permissions"),
            scopes: split("scope"),
            wallet: split("wallet"),
            wallet_required: false,
        }
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

impl ClaimMapping {
    /// Where the principal id lives (default `sub`).
    #[must_use]
    pub fn subject(mut self, path: &str) -> Self {
        self.subject = split(path);
        self
    }

    /// Where the roles live (default `roles`; Keycloak: `realm_access.roles`).
    #[must_use]
    pub fn roles(mut self, path: &str) -> Self {
        self.roles = split(path);
        self
    }

    /// Where the permissions live (default `permissions`).
    #[must_use]
    pub fn permissions(mut self, path: &str) -> Self {
        self.permissions = split(path);
        self
    }

    /// Where the OAuth scopes live (default `scope`).
    #[must_use]
    pub fn scopes(mut self, path: &str) -> Self {
        self.scopes = split(path);
        self
    }

    /// Where the wallet address lives (default `wallet`). It is parsed as an Ethereum address
    /// (mixed case must carry a valid EIP-55 checksum) and stored checksummed.
    #[must_use]
    pub fn wallet(mut self, path: &str) -> Self {
        self.wallet = split(path);
        self
    }

    /// Refuses tokens without a wallet address.
    #[must_use]
    pub fn require_wallet(mut self, required: bool) -> Self {
        self.wallet_required = required;
        self
    }

    /// Builds the context from verified claims.
    pub(crate) fn context(
        &self,
        claims: &Map<String, Value>,
        issuer: &str,
        expires_at: Option<std::time::SystemTime>,
    ) -> Result<SecurityContext, AuthReason> {
        let subject = lookup(claims, &self.subject)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(AuthReason::InvalidClaims)?;
        let mut builder = SecurityContext::builder(subject)
            .issuer(issuer)
            .roles(strings(lookup(claims, &self.roles))?)
            .permissions(strings(lookup(claims, &self.permissions))?)
            .scopes(strings(lookup(claims, &self.scopes))?);
        match lookup(claims, &self.wallet) {
            Some(Value::String(wallet)) => {
                let wallet = EthAddress::parse(wallet).map_err(|_| AuthReason::InvalidClaims)?;
                builder = builder.wallet(wallet);
            }
            Some(Value::Null) | None if !self.wallet_required => {}
            _ => return Err(AuthReason::InvalidClaims),
        }
        if let Some(expires_at) = expires_at {
            builder = builder.expires_at(expires_at);
        }
        Ok(builder.build())
    }
}

/// Follows a dotted path through nested objects.
pub(crate) fn lookup<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.get(first)?;
    for segment in rest {
        value = value.as_object()?.get(segment)?;
    }
    Some(value)
}

/// An array of strings or a space-separated string; absent is empty.
fn strings(value: Option<&Value>) -> Result<Vec<&str>, AuthReason> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split_ascii_whitespace().collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().ok_or(AuthReason::InvalidClaims))
            .collect(),
        Some(_) => Err(AuthReason::InvalidClaims),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn nested_roles_and_space_separated_scopes() {
        let mapping = ClaimMapping::default().roles("realm_access.roles");
        let context = mapping
            .context(
                &claims(json!({
                    "sub": "u1",
                    "realm_access": {"roles": ["admin", "viewer"]},
                    "scope": "read write",
                    "wallet": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
                })),
                "iss",
                None,
            )
            .unwrap();
        assert_eq!(context.roles(), ["admin", "viewer"]);
        assert_eq!(context.scopes(), ["read", "write"]);
        assert_eq!(
            context.wallet().unwrap().to_checksum(),
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        );
    }

    #[test]
    fn bad_checksum_wallet_and_missing_subject_are_invalid() {
        let mapping = ClaimMapping::default();
        let bad_wallet =
            claims(json!({"sub": "u", "wallet": "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}));
        assert_eq!(
            mapping.context(&bad_wallet, "i", None).unwrap_err(),
            AuthReason::InvalidClaims
        );
        assert_eq!(
            mapping
                .context(&claims(json!({"roles": []})), "i", None)
                .unwrap_err(),
            AuthReason::InvalidClaims
        );
    }

    #[test]
    fn required_wallet() {
        let mapping = ClaimMapping::default().require_wallet(true);
        assert!(
            mapping
                .context(&claims(json!({"sub": "u"})), "i", None)
                .is_err()
        );
    }
}
