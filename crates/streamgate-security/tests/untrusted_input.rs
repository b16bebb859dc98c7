//! Property tests: whatever a client sends as a token, verification answers with a reason and
//! never panics; a token that is not a signed JWT of ours is never accepted.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::json;
use streamgate_security::{AuthReason, Issuer, JwtAuth, JwtKey, jsonwebtoken::Algorithm};

fn jwt() -> JwtAuth {
    JwtAuth::builder()
        .issuer(Issuer::new("https://id.test").key(JwtKey::hmac(HMAC_SECRET)))
        .build()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #[test]
    fn arbitrary_tokens_are_refused_without_panicking(token in ".{0,400}") {
        let jwt = jwt();
        let result = runtime().block_on(jwt.verify(&token));
        prop_assert!(result.is_err());
    }

    #[test]
    fn three_segment_garbage_is_refused(
        header in "[A-Za-z0-9_-]{0,60}",
        payload in "[A-Za-z0-9_-]{0,120}",
        signature in "[A-Za-z0-9_-]{0,90}",
    ) {
        let jwt = jwt();
        let token = format!("{header}.{payload}.{signature}");
        let result = runtime().block_on(jwt.verify(&token));
        prop_assert!(result.is_err());
    }

    #[test]
    fn any_change_to_a_valid_token_is_refused(position in 0usize..1000, byte in any::<u8>()) {
        let jwt = jwt();
        let claims = json!({"iss": "https://id.test", "sub": "u", "exp": jwt.clock().unix_seconds() + 60});
        let token = sign(Algorithm::HS256, None, &hmac_key(), &claims);
        let mut bytes = token.clone().into_bytes();
        let position = position % bytes.len();
        prop_assume!(bytes[position] != byte);
        bytes[position] = byte;
        if let Ok(tampered) = String::from_utf8(bytes) {
            let result = runtime().block_on(jwt.verify(&tampered));
            // Base64url has slack in its last character: a change there may decode to the same
            // signature bytes, and then the token is the same token.
            let same_signature = position + 1 == token.len()
                && result.is_ok();
            prop_assert!(result.is_err() || same_signature, "accepted {tampered}");
            if let Err(reason) = result {
                prop_assert_ne!(reason, AuthReason::Ok);
            }
        }
    }
}
