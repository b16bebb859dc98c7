//! Handler extractors for the [`SecurityContext`] the layer left in the request.

use std::convert::Infallible;

use axum_core::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::request::Parts;
use streamgate_core::SecurityContext;

use crate::{AuthDecision, AuthReason, AuthSource, rejection::refusal};

/// The request's [`SecurityContext`]; answers 401 (`WWW-Authenticate: Bearer`, problem+json) when
/// the request has none.
///
/// ```
/// use streamgate_security::Authenticated;
///
/// async fn me(Authenticated(context): Authenticated) -> String {
///     context.user_id().to_owned()
/// }
/// # let _ = axum::Router::<()>::new().route("/me", axum::routing::get(me));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated(pub SecurityContext);

/// The request's [`SecurityContext`], if any; never rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaybeAuthenticated(pub Option<SecurityContext>);

/// The rejection of [`Authenticated`]: 401 with a Bearer challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthenticated(());

impl IntoResponse for Unauthenticated {
    fn into_response(self) -> Response {
        refusal(
            AuthDecision::new(AuthSource::None, AuthReason::MissingCredentials),
            false,
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Unauthenticated;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SecurityContext>()
            .cloned()
            .map(Authenticated)
            .ok_or(Unauthenticated(()))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<SecurityContext>()
            .cloned()
            .map(Authenticated))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuthenticated {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<SecurityContext>().cloned()))
    }
}
