//! Subprotocols: the ones offered in the upgrade request, in order, and the
//! check of the server's choice (RFC 6455 section 4.1: a choice that was
//! not offered fails the connection).

use std::sync::Arc;

use http::HeaderValue;

use crate::types::Error;

/// The subprotocols a machine offers.
#[derive(Debug, Clone)]
pub(crate) struct Protocols {
    offered: Vec<String>,
    /// The `Sec-WebSocket-Protocol` request header: the offer, in order.
    header: HeaderValue,
    /// Whether a server that chooses none fails the connection.
    required: bool,
}

impl Protocols {
    /// Checks the names (HTTP tokens, each once) and builds the header.
    pub(crate) fn new(offered: Vec<String>, required: bool) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidConfig {
            option: "protocols",
            reason,
        };
        if offered.is_empty() {
            return Err(invalid(
                "require_protocol needs at least one subprotocol to offer".into(),
            ));
        }
        for (i, name) in offered.iter().enumerate() {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(invalid(format!(
                    "{name:?} is not a valid subprotocol name (letters, digits and !#$%&'*+-.^_`|~ only)"
                )));
            }
            if offered[..i].contains(name) {
                return Err(invalid(format!("{name:?} is offered twice")));
            }
        }
        let header = HeaderValue::try_from(offered.join(", "))
            .map_err(|e| invalid(format!("cannot be sent ({e})")))?;
        Ok(Self {
            offered,
            header,
            required,
        })
    }

    /// The request header that offers them.
    pub(crate) fn header(&self) -> &HeaderValue {
        &self.header
    }

    /// Checks the server's `Sec-WebSocket-Protocol`: the chosen subprotocol,
    /// or why the connection must fail.
    pub(crate) fn accept(&self, chosen: Option<&str>) -> Result<Option<Arc<str>>, Error> {
        check(&self.offered, self.required, chosen)
    }
}

/// The same check for a machine that offered nothing: any choice fails.
pub(crate) fn accept_unoffered(chosen: Option<&str>) -> Result<Option<Arc<str>>, Error> {
    check(&[], false, chosen)
}

fn check(
    offered: &[String],
    required: bool,
    chosen: Option<&str>,
) -> Result<Option<Arc<str>>, Error> {
    let mismatch = || Error::Subprotocol {
        chosen: chosen.map(str::to_owned),
        offered: offered.to_vec(),
    };
    match chosen.map(str::trim) {
        None | Some("") if required => Err(mismatch()),
        None | Some("") => Ok(None),
        Some(name) if offered.iter().any(|o| o == name) => Ok(Some(name.into())),
        Some(_) => Err(mismatch()),
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(required: bool) -> Protocols {
        Protocols::new(vec!["chat.v2".into(), "chat.v1".into()], required).expect("valid")
    }

    #[test]
    fn the_offer_keeps_its_order() {
        assert_eq!(offered(false).header(), "chat.v2, chat.v1");
    }

    #[test]
    fn the_servers_choice_must_be_one_offered() {
        let p = offered(false);
        assert_eq!(
            p.accept(Some("chat.v1")).expect("offered").as_deref(),
            Some("chat.v1")
        );
        assert_eq!(p.accept(None).expect("optional"), None);
        let err = p.accept(Some("chat.v3")).expect_err("not offered");
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            r#"server chose subprotocol "chat.v3", which was not offered (offered: "chat.v2", "chat.v1"; not retried)"#
        );
        // A list is not a choice.
        assert!(p.accept(Some("chat.v2, chat.v1")).is_err());
    }

    #[test]
    fn a_required_subprotocol_must_be_chosen() {
        let err = offered(true).accept(None).expect_err("required");
        assert!(
            matches!(err, Error::Subprotocol { chosen: None, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("one is required"), "{err}");
    }

    #[test]
    fn a_choice_without_an_offer_fails() {
        assert_eq!(
            accept_unoffered(None).expect("nothing offered, nothing chosen"),
            None
        );
        let err = accept_unoffered(Some("chat")).expect_err("not offered");
        assert!(err.to_string().contains("none was offered"), "{err}");
    }

    #[test]
    fn names_are_checked() {
        for bad in [
            vec![],
            vec!["a b".to_owned()],
            vec!["".to_owned()],
            vec!["x".into(), "x".into()],
        ] {
            let err = Protocols::new(bad.clone(), true).expect_err("refused");
            assert!(
                matches!(
                    err,
                    Error::InvalidConfig {
                        option: "protocols",
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
        }
    }
}
