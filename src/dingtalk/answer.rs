//! What DingTalk answered: a webhook's `{errcode, errmsg}` and the OpenAPI's error body,
//! turned into a send's outcome.

use serde::Deserialize;

use super::{Call, SendError};

/// DingTalk's answer body. `errcode` has been seen both as a number and as a string.
#[derive(Deserialize)]
struct Answer {
    errcode: Errcode,
    #[serde(default)]
    errmsg: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Errcode {
    Number(i64),
    Text(String),
}

/// The OpenAPI's error body.
#[derive(Deserialize)]
struct OpenApiAnswer {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    requestid: String,
}

/// The failure of an OpenAPI `call` that answered `status` and `body`.
pub(super) fn openapi_error(call: Call, status: u16, body: &[u8]) -> SendError {
    match serde_json::from_slice::<OpenApiAnswer>(body) {
        Ok(answer) => SendError::OpenApi {
            call,
            status,
            code: answer.code,
            message: answer.message,
            request_id: answer.requestid,
        },
        // These answers are not quoted: they may hold a token or ticket in a shape not
        // understood.
        Err(_) if (200..300).contains(&status) && call == Call::StreamOpen => {
            SendError::BadAnswer("a connection answer without endpoint and ticket".into())
        }
        Err(_) if (200..300).contains(&status) && call == Call::AccessToken => {
            SendError::BadAnswer("an access-token answer without accessToken and expireIn".into())
        }
        Err(_) if (200..300).contains(&status) => SendError::BadAnswer(excerpt(body)),
        Err(_) => SendError::Http(status),
    }
}

/// Turns a webhook's HTTP status and body into the send's outcome.
pub fn classify(status: u16, body: &[u8]) -> Result<(), SendError> {
    let answer = serde_json::from_slice::<Answer>(body).ok();
    let Some(answer) = answer else {
        if status == 200 {
            return Err(SendError::BadAnswer(excerpt(body)));
        }
        return Err(SendError::Http(status));
    };
    let errcode = match answer.errcode {
        Errcode::Number(n) => n,
        Errcode::Text(text) => text
            .trim()
            .parse()
            .map_err(|_| SendError::BadAnswer(excerpt(body)))?,
    };
    match errcode {
        0 if status == 200 => Ok(()),
        0 => Err(SendError::Http(status)),
        errcode => Err(SendError::Rejected {
            errcode,
            errmsg: answer.errmsg,
        }),
    }
}

/// The start of an unexpected answer, for the log line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(200).collect();
    text.replace('\n', " ")
}
