//! Query protocol XML: a small writer for result elements, and the
//! response and error envelopes.

use super::{QueryError, content_type};
use http::{Response, StatusCode};

/// Text with `&`, `<`, `>`, `"` and `'` escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Builds the inside of a result element.
#[derive(Debug, Default)]
pub struct Xml(String);

impl Xml {
    pub fn new() -> Self {
        Self::default()
    }

    /// `<name>text</name>`.
    pub fn el(&mut self, name: &str, text: impl AsRef<str>) -> &mut Self {
        self.0
            .push_str(&format!("<{name}>{}</{name}>", escape(text.as_ref())));
        self
    }

    /// Escaped text.
    pub fn text(&mut self, text: impl AsRef<str>) -> &mut Self {
        self.0.push_str(&escape(text.as_ref()));
        self
    }

    /// `<name>`, then what `inner` writes, then `</name>`.
    pub fn wrap(&mut self, name: &str, inner: impl FnOnce(&mut Self)) -> &mut Self {
        self.0.push_str(&format!("<{name}>"));
        inner(self);
        self.0.push_str(&format!("</{name}>"));
        self
    }

    /// A list: `<name><member>..</member>...</name>`.
    pub fn list<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        each: impl Fn(&mut Self, T),
    ) -> &mut Self {
        self.wrap(name, |x| {
            for item in items {
                x.wrap("member", |x| each(x, item));
            }
        })
    }

    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.0)
    }
}

fn namespace(service: &str) -> &'static str {
    if service == "sts" {
        "https://sts.amazonaws.com/doc/2011-06-15/"
    } else {
        "https://iam.amazonaws.com/doc/2010-05-08/"
    }
}

fn reply(status: StatusCode, body: String) -> Response<s3s::Body> {
    let mut r = Response::new(s3s::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, content_type());
    r
}

/// The answer to `action`: its result element (when the action has one)
/// and the request id.
pub fn response(service: &str, action: &str, result: Option<&str>, request_id: &str) -> Response<s3s::Body> {
    let result = result.map_or(String::new(), |r| format!("<{action}Result>{r}</{action}Result>"));
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        namespace(service),
        escape(request_id)
    );
    reply(StatusCode::OK, body)
}

/// An error answer.
pub fn error_response(service: &str, e: &QueryError, request_id: &str) -> Response<s3s::Body> {
    let kind = if e.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        namespace(service),
        e.code,
        escape(&e.message),
        escape(request_id)
    );
    reply(e.status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped_elements_and_lists() {
        let mut x = Xml::new();
        x.el("A", "1 < 2 & \"q\"").list("L", ["x", "y"], |x, v| {
            x.el("V", v);
        });
        assert_eq!(
            x.finish(),
            "<A>1 &lt; 2 &amp; &quot;q&quot;</A><L><member><V>x</V></member><member><V>y</V></member></L>"
        );
    }
}
