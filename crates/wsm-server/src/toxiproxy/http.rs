//! HTTP/1.1 for the API (hyper): a request becomes a [`Call`] for the
//! registry, the registry's [`Reply`] becomes the response.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, body::Incoming, header};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use super::registry::{Call, Reply};

/// The largest request body read (a `/populate` of many proxies fits).
const MAX_BODY: usize = 1024 * 1024;

/// A call on its way to the registry, and where its reply goes.
pub(crate) type Envelope = (Call, oneshot::Sender<Reply>);

/// Answers one request.
pub(crate) async fn answer(
    request: Request<Incoming>,
    calls: mpsc::Sender<Envelope>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = match read_call(request).await {
        Ok(call) => {
            let (reply, replied) = oneshot::channel();
            if calls.send((call, reply)).await.is_err() {
                Reply::error(503, "the API is stopping")
            } else {
                replied
                    .await
                    .unwrap_or_else(|_| Reply::error(503, "the API is stopping"))
            }
        }
        Err(reply) => reply,
    };
    Ok(response(reply))
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(reply.status);
    let body = match reply.body {
        Some(body) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Full::new(Bytes::from(body.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    builder.body(body).unwrap_or_else(|_| {
        // Only a status out of range fails, and every status here is a
        // constant of the registry's.
        let mut fallback = Response::new(Full::new(Bytes::new()));
        *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// The call a request makes: its route, and its body parsed.
async fn read_call(request: Request<Incoming>) -> Result<Call, Reply> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect::<Result<_, _>>()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let body = request.into_body();
    let update = method == Method::POST || method == Method::PATCH;
    match (segments.as_slice(), &method) {
        (["version"], &Method::GET) => Ok(Call::Version),
        (["reset"], &Method::POST) => Ok(Call::Reset),
        (["proxies"], &Method::GET) => Ok(Call::ListProxies),
        (["proxies"], &Method::POST) => Ok(Call::CreateProxy(json(body).await?)),
        (["populate"], &Method::POST) => Ok(Call::Populate(json(body).await?)),
        (["proxies", proxy], &Method::GET) => Ok(Call::ShowProxy((*proxy).to_owned())),
        (["proxies", proxy], _) if update => {
            Ok(Call::UpdateProxy((*proxy).to_owned(), json(body).await?))
        }
        (["proxies", proxy], &Method::DELETE) => Ok(Call::DeleteProxy((*proxy).to_owned())),
        (["proxies", proxy, "toxics"], &Method::GET) => Ok(Call::ListToxics((*proxy).to_owned())),
        (["proxies", proxy, "toxics"], &Method::POST) => {
            Ok(Call::CreateToxic((*proxy).to_owned(), json(body).await?))
        }
        (["proxies", proxy, "toxics", toxic], &Method::GET) => {
            Ok(Call::ShowToxic((*proxy).to_owned(), (*toxic).to_owned()))
        }
        (["proxies", proxy, "toxics", toxic], _) if update => Ok(Call::UpdateToxic(
            (*proxy).to_owned(),
            (*toxic).to_owned(),
            json(body).await?,
        )),
        (["proxies", proxy, "toxics", toxic], &Method::DELETE) => {
            Ok(Call::DeleteToxic((*proxy).to_owned(), (*toxic).to_owned()))
        }
        (
            ["version" | "reset" | "proxies" | "populate"]
            | ["proxies", _]
            | ["proxies", _, "toxics"]
            | ["proxies", _, "toxics", _],
            _,
        ) => Err(Reply::error(
            405,
            format!("{method} is not allowed on {path}"),
        )),
        _ => Err(Reply::error(404, format!("no such call: {method} {path}"))),
    }
}

/// The body, read up to [`MAX_BODY`], as `T`.
async fn json<T: DeserializeOwned>(body: Incoming) -> Result<T, Reply> {
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| Reply::error(400, format!("bad request body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| Reply::error(400, format!("bad request body: {e}")))
}

/// A path segment with its `%XX` escapes decoded.
fn percent_decode(segment: &str) -> Result<String, Reply> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| Reply::error(400, format!("the path segment {segment:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_decoded_and_bad_escapes_refused() {
        assert_eq!(percent_decode("my%20proxy").expect("decoded"), "my proxy");
        assert_eq!(percent_decode("plain").expect("decoded"), "plain");
        for bad in ["%ff", "a%c3"] {
            assert_eq!(
                percent_decode(bad).expect_err("refused").status,
                400,
                "{bad}"
            );
        }
    }
}
