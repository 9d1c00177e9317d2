//! The block page's two report forms, "blocked by mistake" and "report a harmful site",
//! and the handler they post to ([`FORM_PATH`]).
//!
//! A post must carry a token this process issued for the same Host (see [`super::csrf`])
//! and an `Origin` (or, failing that, `Referer`) naming that Host; it is rate-limited per
//! source address ([`ReportLimiter`], the same quota as the API's public reports), and
//! taken by the [`ReportDesk`], which stores it (and spools it for the central when
//! forwarding). The address is used for the limit only: it is never stored. Everything
//! echoed back is HTML-escaped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::{BlockPage, Lang, escape, html_response, request_host};
use crate::admin::desk::{DeskError, ReportDesk};
use crate::admin::limit::ReportLimiter;
use crate::admin::reports::{Kind, NewReport};

/// Where the forms post (on whatever host the page was served for).
pub const FORM_PATH: &str = "/.kidsafe/report";

/// What the forms need: the desk, the CSRF secret and the per-address limit.
pub struct Forms {
    /// Takes the reports.
    pub desk: Arc<ReportDesk>,
    /// Issues and checks form tokens.
    pub csrf: super::csrf::Csrf,
    /// Reports per hour per source address.
    pub limiter: ReportLimiter,
}

/// A form field's label and the rest of the forms' text, per language.
struct Text {
    mistake_title: &'static str,
    mistake_button: &'static str,
    harmful_title: &'static str,
    harmful_button: &'static str,
    site: &'static str,
    category: &'static str,
    note: &'static str,
    contact: &'static str,
    other_lang: (&'static str, &'static str),
}

fn text(lang: Lang) -> Text {
    match lang {
        Lang::Vi => Text {
            mistake_title: "Trang này bị chặn nhầm?",
            mistake_button: "Báo chặn nhầm",
            harmful_title: "Báo cáo một trang web có hại",
            harmful_button: "Gửi báo cáo",
            site: "Tên miền",
            category: "Danh mục",
            note: "Ghi chú (không bắt buộc)",
            contact: "Liên hệ của bạn (không bắt buộc)",
            other_lang: ("?lang=en", "English"),
        },
        Lang::En => Text {
            mistake_title: "Blocked by mistake?",
            mistake_button: "Report a mistake",
            harmful_title: "Report a harmful site",
            harmful_button: "Send the report",
            site: "Site",
            category: "Category",
            note: "Note (optional)",
            contact: "How to reach you (optional)",
            other_lang: ("?lang=vi", "Tiếng Việt"),
        },
    }
}

impl Forms {
    /// The two forms for a page served to `host` (the blocked name) blocked in
    /// `blocked_in`, in `lang`, with a fresh token.
    pub fn render(&self, host: &str, blocked_in: &[&str], lang: Lang, now: u64) -> String {
        let t = text(lang);
        let token = escape(&self.csrf.issue(host, now));
        let site = escape(host);
        let categories = self.desk.categories();
        // The category that blocked it, when it is one a report may name.
        let blocked = blocked_in
            .iter()
            .find(|c| categories.iter().any(|k| k == *c))
            .map_or(String::new(), |c| escape(c));
        let contact = if self.desk.allow_contact() {
            format!(
                "<label>{} <input name=\"contact\" maxlength=\"200\"></label><br>",
                t.contact
            )
        } else {
            String::new()
        };
        let options: String = categories
            .iter()
            .map(|c| {
                let c = escape(c);
                format!("<option value=\"{c}\">{c}</option>")
            })
            .collect();
        let lang_field = format!(
            "<input type=\"hidden\" name=\"lang\" value=\"{}\">",
            lang.code()
        );
        format!(
            r#"<hr><section class="report" lang="{code}">
<p><a href="{switch}">{switch_label}</a></p>
<h2>{mistake_title}</h2>
<form method="post" action="{FORM_PATH}">
<input type="hidden" name="token" value="{token}"><input type="hidden" name="kind" value="mistake">
<input type="hidden" name="category" value="{blocked}">{lang_field}
<label>{site_label} <input name="name" value="{site}" maxlength="253" required></label><br>
<label>{note} <input name="note" maxlength="1000"></label><br>{contact}
<button type="submit">{mistake_button}</button>
</form>
<h2>{harmful_title}</h2>
<form method="post" action="{FORM_PATH}">
<input type="hidden" name="token" value="{token}"><input type="hidden" name="kind" value="harmful">{lang_field}
<label>{site_label} <input name="name" maxlength="253" required></label><br>
<label>{category} <select name="category" required>{options}</select></label><br>
<label>{note} <input name="note" maxlength="1000"></label><br>{contact}
<button type="submit">{harmful_button}</button>
</form></section>
"#,
            code = lang.code(),
            switch = t.other_lang.0,
            switch_label = t.other_lang.1,
            mistake_title = t.mistake_title,
            mistake_button = t.mistake_button,
            harmful_title = t.harmful_title,
            harmful_button = t.harmful_button,
            site_label = t.site,
            category = t.category,
            note = t.note,
        )
    }
}

/// The fields a form posts.
#[derive(Default)]
struct Posted {
    token: String,
    report: NewReport,
    lang: Lang,
}

fn parse(body: &[u8]) -> Result<Posted, String> {
    let mut posted = Posted::default();
    let mut kind = None;
    for (key, value) in url::form_urlencoded::parse(body) {
        let value = value.into_owned();
        match key.as_ref() {
            "token" => posted.token = value,
            "kind" => kind = Some(value),
            "name" => posted.report.name = value,
            "category" => posted.report.category = value,
            "note" => posted.report.note = Some(value).filter(|n| !n.trim().is_empty()),
            "contact" => posted.report.contact = Some(value).filter(|c| !c.trim().is_empty()),
            "lang" => posted.lang = Lang::from_code(&value),
            _ => {}
        }
    }
    posted.report.kind = match kind.as_deref() {
        None | Some("harmful") => Kind::Harmful,
        Some("mistake") => Kind::Mistake,
        Some(other) => return Err(format!("unknown kind {other:?}")),
    };
    Ok(posted)
}

/// Whether `Origin` (or, without it, `Referer`) names `host`: the post comes from a page
/// of this host, not from another site.
fn same_origin(headers: &HeaderMap, host: &str) -> bool {
    let named = |h: header::HeaderName| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| url::Url::parse(v).ok())
            .and_then(|u| {
                u.host_str()
                    .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            })
    };
    match named(header::ORIGIN).or_else(|| named(header::REFERER)) {
        Some(origin) => origin == host,
        None => false,
    }
}

/// `POST /.kidsafe/report`.
pub(super) async fn post(
    State(page): State<Arc<BlockPage>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(forms) = &page.forms else {
        return html_response(StatusCode::NOT_FOUND, result_page(Lang::Vi, "—"));
    };
    let posted = match parse(&body) {
        Ok(p) => p,
        Err(e) => return html_response(StatusCode::BAD_REQUEST, result_page(Lang::Vi, &e)),
    };
    let lang = posted.lang;
    let refused = |why: &str| html_response(StatusCode::FORBIDDEN, result_page(lang, why));
    let Some(host) = request_host(&headers) else {
        return refused("no valid Host");
    };
    let now = crate::clock::now_unix();
    if !same_origin(&headers, &host) {
        return refused(match lang {
            Lang::Vi => "Biểu mẫu phải được gửi từ trang này.",
            Lang::En => "The form must be sent from this page.",
        });
    }
    if !forms.csrf.verify(&posted.token, &host, now) {
        return refused(match lang {
            Lang::Vi => "Biểu mẫu đã hết hạn; hãy tải lại trang và gửi lại.",
            Lang::En => "The form has expired; reload the page and send it again.",
        });
    }
    if !forms.limiter.allow(client.ip(), Instant::now()) {
        let why = match lang {
            Lang::Vi => "Quá nhiều báo cáo từ địa chỉ này; hãy thử lại sau.",
            Lang::En => "Too many reports from this address; try again later.",
        };
        return html_response(StatusCode::TOO_MANY_REQUESTS, result_page(lang, why));
    }
    match forms.desk.submit(posted.report).await {
        Ok(submitted) => {
            let thanks = match lang {
                Lang::Vi => format!(
                    "Cảm ơn bạn. Báo cáo về {} đã được ghi nhận.",
                    submitted.name
                ),
                Lang::En => format!(
                    "Thank you. Your report about {} was received.",
                    submitted.name
                ),
            };
            html_response(StatusCode::CREATED, result_page(lang, &thanks))
        }
        Err(DeskError::Report(e)) if e.is_client_error() => {
            forms.limiter.refund(client.ip());
            html_response(StatusCode::BAD_REQUEST, result_page(lang, &e.to_string()))
        }
        Err(e) => {
            tracing::error!(error = %e, "block page: could not store a report");
            let why = match lang {
                Lang::Vi => "Không lưu được báo cáo; hãy thử lại sau.",
                Lang::En => "The report could not be stored; try again later.",
            };
            html_response(StatusCode::INTERNAL_SERVER_ERROR, result_page(lang, why))
        }
    }
}

/// A short page saying `message` (escaped here).
fn result_page(lang: Lang, message: &str) -> String {
    let back = match lang {
        Lang::Vi => "Quay lại",
        Lang::En => "Back",
    };
    format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>kidsafe</title></head>\n<body><p>{}</p><p><a href=\"/\">{back}</a></p></body></html>\n",
        lang.code(),
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_parse_and_unknown_kinds_are_refused() {
        let p = parse(b"token=1.ab&kind=mistake&name=Bad.Example&category=&note=&lang=en").unwrap();
        assert_eq!(p.token, "1.ab");
        assert_eq!(p.report.kind, Kind::Mistake);
        assert_eq!(p.report.name, "Bad.Example");
        assert_eq!(p.report.note, None);
        assert_eq!(p.lang, Lang::En);
        assert!(parse(b"kind=other").is_err());
    }

    #[test]
    fn origin_or_referer_must_name_the_host() {
        let mut h = HeaderMap::new();
        assert!(!same_origin(&h, "bad.example"), "neither header");
        h.insert(header::REFERER, "http://bad.example/x".parse().unwrap());
        assert!(same_origin(&h, "bad.example"));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h, "bad.example"), "Origin wins over Referer");
    }
}
