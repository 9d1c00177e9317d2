//! The admin API over real HTTP (reqwest), as an operator's script would call it.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

/// A client of the admin API with a bearer token.
pub struct Api {
    pub c: reqwest::Client,
    pub base: String,
    token: String,
}

/// A reply: status, ETag and JSON body (`null` when not JSON).
pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub body: Value,
}

impl Api {
    pub fn new(admin: SocketAddr, token: &str) -> Api {
        kidsafe_dns::feed::http::install_crypto_provider();
        let c = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Api {
            c,
            base: format!("http://{admin}"),
            token: token.to_owned(),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self
            .c
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.body(b);
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                r = r.header("content-type", "application/json");
            }
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap_or_default();
        Reply {
            status,
            etag,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body.to_string()), &[]).await
    }

    pub async fn write(&self, method: &str, path: &str, body: Option<Value>, etag: &str) -> Reply {
        self.send(
            method,
            path,
            body.map(|b| b.to_string()),
            &[("if-match", etag)],
        )
        .await
    }
}
