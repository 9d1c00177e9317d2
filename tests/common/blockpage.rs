//! The block page's forms as a browser posts them: the page for a blocked host (its CSRF
//! token read from the form), then a form post with that host and an `Origin`.

/// The block page for `host` (GET), and the CSRF token in its forms.
pub async fn block_page(
    c: &reqwest::Client,
    page: u16,
    host: &str,
    query: &str,
) -> (String, String) {
    let html = c
        .get(format!("http://127.0.0.1:{page}/{query}"))
        .header("host", host)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = html
        .split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no token in {html}"))
        .to_owned();
    (html, token)
}

/// Posts a block page form for `host` with `fields`, `Origin: http://{origin}`.
pub async fn post_form(
    c: &reqwest::Client,
    page: u16,
    host: &str,
    origin: Option<&str>,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut r = c
        .post(format!("http://127.0.0.1:{page}/.kidsafe/report"))
        .header("host", host)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(o) = origin {
        r = r.header("origin", format!("http://{o}"));
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}
