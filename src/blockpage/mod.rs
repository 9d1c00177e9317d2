//! The block page: where `blocking.mode = "ip"` sends a browser that asked for a blocked
//! site. It explains, in Vietnamese and English, that the site is blocked to protect
//! children, in which category, how to ask for a review, and the national child protection
//! hotline 111.
//!
//! It never fetches anything (it is not a proxy), and everything taken from the request
//! (the Host header above all) is untrusted: it is normalized as a DNS name and
//! HTML-escaped before it is shown. HTTPS visits cannot show it (no certificate for the
//! blocked site); browsers show their own error instead.
//!
//! With reports on ([`BlockPage::with_forms`]) it also carries two forms, "this page was
//! blocked by mistake" (the name filled in) and "report a harmful site" (name and
//! category), in Vietnamese or, with `?lang=en`, English; they post to
//! [`forms::FORM_PATH`] with a CSRF token ([`csrf`]).

pub mod csrf;
pub mod forms;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::lists::normalize::normalize;
use crate::lists::swap::LiveBlocklist;
use crate::policy::decide::{Outcome, Policy};

/// Largest form post.
const MAX_FORM_BODY: usize = 8 * 1024;

/// What the page needs to know.
pub struct BlockPage {
    lists: Arc<LiveBlocklist>,
    policy: Arc<ArcSwap<Policy>>,
    review_url: Option<String>,
    /// The report forms, when reports are taken here.
    forms: Option<forms::Forms>,
}

/// The language of the forms: Vietnamese unless `?lang=en`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    /// Tiếng Việt (the default).
    #[default]
    Vi,
    /// English.
    En,
}

impl Lang {
    /// `en` is English; anything else Vietnamese.
    pub fn from_code(code: &str) -> Lang {
        if code.eq_ignore_ascii_case("en") {
            Lang::En
        } else {
            Lang::Vi
        }
    }

    /// The code, as in `lang="vi"`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// The language a query string asks for (`lang=en`).
    fn of_query(query: Option<&str>) -> Lang {
        query
            .into_iter()
            .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
            .find(|(k, _)| k == "lang")
            .map_or(Lang::Vi, |(_, v)| Lang::from_code(&v))
    }
}

/// Escapes text for HTML element content and quoted attributes. Five characters are all
/// that can change the meaning of text in these two contexts; no crate needed for that.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page for `site` (already a normalized name, or `None` when the Host header was not
/// one) blocked in `categories`.
pub fn render(site: Option<&str>, categories: &[&str], review_url: Option<&str>) -> String {
    render_with(site, categories, review_url, "")
}

/// [`render`], with `forms` (HTML, already escaped where it needs to be) at the end.
fn render_with(
    site: Option<&str>,
    categories: &[&str],
    review_url: Option<&str>,
    forms: &str,
) -> String {
    let site = escape(site.unwrap_or("this site / trang này"));
    let category = if categories.is_empty() {
        "—".to_owned()
    } else {
        escape(&categories.join(", "))
    };
    let review = match review_url {
        Some(url) => {
            let url = escape(url);
            format!("<a href=\"{url}\">{url}</a>")
        }
        None => "your network administrator / quản trị mạng của bạn".to_owned(),
    };
    format!(
        r#"<!doctype html>
<html lang="vi">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trang web bị chặn / Site blocked</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em;line-height:1.5}}
h1{{color:#b00}} .hotline{{font-size:1.4em;font-weight:bold}}</style></head>
<body>
<h1>Trang web này đã bị chặn</h1>
<p>Trang <strong>{site}</strong> đã bị chặn để bảo vệ trẻ em trên môi trường mạng.</p>
<p>Danh mục: <strong>{category}</strong></p>
<p>Nếu bạn cho rằng trang này bị chặn nhầm, hãy yêu cầu xem xét lại tại: {review}</p>
<p class="hotline">Tổng đài quốc gia bảo vệ trẻ em: 111 (miễn phí, 24/7)</p>
<hr>
<h1 lang="en">This site is blocked</h1>
<p lang="en"><strong>{site}</strong> has been blocked to protect children online.</p>
<p lang="en">Category: <strong>{category}</strong></p>
<p lang="en">If you think this is a mistake, ask for a review: {review}</p>
<p class="hotline" lang="en">National child protection hotline: 111 (free, 24/7)</p>
{forms}</body></html>
"#
    )
}

impl BlockPage {
    /// A block page judging sites with `lists` and `policy` (the one serving at each request).
    pub fn new(
        lists: Arc<LiveBlocklist>,
        policy: Arc<ArcSwap<Policy>>,
        review_url: Option<String>,
    ) -> Self {
        BlockPage {
            lists,
            policy,
            review_url,
            forms: None,
        }
    }

    /// Shows the report forms, taking their posts with `forms`.
    pub fn with_forms(mut self, forms: forms::Forms) -> Self {
        self.forms = Some(forms);
        self
    }

    /// The page for a request with these headers from `client`, forms in `lang`.
    fn page(&self, headers: &HeaderMap, client: SocketAddr, lang: Lang) -> String {
        let host = request_host(headers);
        let mut service = String::new();
        let mut categories = Vec::new();
        let list = self.lists.current();
        if let Some(h) = &host {
            let policy = self.policy.load();
            let group = policy.group_for(&crate::policy::Client::from_addr(client.ip()));
            let labels = || h.split('.').map(str::as_bytes);
            match policy.decide(group, &list, labels) {
                Outcome::Blocked(v) => categories = list.manifest().category_names(v.categories),
                Outcome::Filtered(_) => categories = vec!["deny list"],
                Outcome::Service(b) => service = format!("service {}", b.id),
                _ => {}
            }
            if !service.is_empty() {
                categories = vec![service.as_str()];
            }
        }
        let forms = match (&self.forms, &host) {
            (Some(forms), Some(h)) => forms.render(h, &categories, lang, crate::clock::now_unix()),
            _ => String::new(),
        };
        render_with(
            host.as_deref(),
            &categories,
            self.review_url.as_deref(),
            &forms,
        )
    }
}

/// The request's Host, untrusted: a port stripped, then accepted only if it is a valid
/// DNS name (normalized).
fn request_host(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.rsplit_once(':')
                .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                .map_or(h, |(n, _)| n)
        })
        .and_then(|h| normalize(h).ok())
        .map(|n| n.into_owned())
}

async fn handle(
    State(page): State<Arc<BlockPage>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let body = page.page(&headers, client, Lang::of_query(uri.query()));
    html_response(StatusCode::FORBIDDEN, body)
}

/// `body` as an HTML response with the page's headers: no caching, no scripts, no
/// sniffing, no framing.
fn html_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Serves the block page on `listeners` until `stop` is cancelled.
pub fn spawn(
    listeners: Vec<TcpListener>,
    page: BlockPage,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let page = Arc::new(page);
    listeners
        .into_iter()
        .map(|listener| {
            let app = axum::Router::new()
                .route(forms::FORM_PATH, axum::routing::post(forms::post))
                .fallback(handle)
                .layer(DefaultBodyLimit::max(MAX_FORM_BODY))
                .with_state(page.clone());
            crate::web::serve_http(listener, app, stop.clone(), "block page")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_bilingual_with_category_and_hotline() {
        let html = render(
            Some("casino.example"),
            &["gambling"],
            Some("https://report.example/review"),
        );
        for needle in [
            "bị chặn",
            "blocked to protect children",
            "gambling",
            "111",
            "casino.example",
            "https://report.example/review",
        ] {
            assert!(html.contains(needle), "{needle}");
        }
    }

    #[test]
    fn untrusted_text_is_escaped() {
        let html = render(
            None,
            &["<script>alert(1)</script>"],
            Some("\"><img src=x onerror=alert(1)>"),
        );
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
