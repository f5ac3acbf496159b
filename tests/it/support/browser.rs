//! A browser stand-in: keeps cookies, never follows redirects, and fills in the forms
//! the server renders (hidden inputs included), the way a person's browser would.

use super::TestServer;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::redirect::Policy;
use std::collections::HashMap;

/// A PKCE pair computed here, independently of the server's code.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// A verifier derived from `seed` and its S256 challenge.
    pub fn new(seed: &str) -> Self {
        let verifier = format!("{seed:-<43}");
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        Self {
            challenge: B64.encode(digest.as_ref()),
            verifier,
        }
    }
}

/// One browser with its cookie jar, and the last page it was shown.
pub struct Browser<'s> {
    pub server: &'s TestServer,
    pub http: reqwest::Client,
    pub last_page: String,
    /// The cookie jar `http` keeps, for another client of the same browser.
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
}

/// A response as the browser saw it.
pub struct Seen {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Seen {
    /// The query parameters of the redirect this response made.
    pub fn redirect_params(&self) -> HashMap<String, String> {
        let location = self.location.as_deref().expect("a redirect");
        let url = url::Url::parse(location).expect("absolute location");
        url.query_pairs().into_owned().collect()
    }

    /// The redirect target without its query.
    pub fn redirect_base(&self) -> String {
        let location = self.location.as_deref().expect("a redirect");
        location.split('?').next().unwrap_or_default().to_owned()
    }
}

/// The text a person reads on `page`: tags dropped, whitespace collapsed.
pub fn text(page: &Seen) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in page.body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes the HTML escapes the server's templates produce, as a browser does.
fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the hidden input `name` on the page `html`, unescaped.
pub fn hidden_in(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(unescape(&html[start..start + end]))
}

impl<'s> Browser<'s> {
    /// A browser with an empty cookie jar.
    pub fn new(server: &'s TestServer) -> Self {
        Self::with_headers(server, reqwest::header::HeaderMap::new())
    }

    /// A browser at `address` behind a proxy the server trusts: every request carries
    /// `X-Forwarded-For: address`.
    pub fn behind_proxy(server: &'s TestServer, address: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", address.parse().expect("a header value"));
        Self::with_headers(server, headers)
    }

    fn with_headers(server: &'s TestServer, headers: reqwest::header::HeaderMap) -> Self {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .default_headers(headers)
            .build()
            .expect("client");
        Self {
            server,
            http,
            last_page: String::new(),
            jar,
        }
    }

    /// A client of this browser (its cookies) that opens a connection of its own for
    /// each request, as a second tab might.
    pub fn fresh_connection_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_provider(self.jar.clone())
            .redirect(Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .expect("client")
    }

    async fn see(&mut self, response: reqwest::Response) -> Seen {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .map(|v| v.to_str().expect("ascii location").to_owned());
        let body = response.text().await.expect("body");
        self.last_page = body.clone();
        Seen {
            status,
            location,
            headers,
            body,
        }
    }

    /// Opens `/authorize` with these query parameters.
    pub async fn authorize(&mut self, params: &[(&str, &str)]) -> Seen {
        let response = self
            .http
            .get(self.server.url("/authorize"))
            .query(params)
            .send()
            .await
            .expect("authorize");
        self.see(response).await
    }

    /// The value of the hidden input `name` on the last page.
    pub fn hidden(&self, name: &str) -> Option<String> {
        hidden_in(&self.last_page, name)
    }

    /// Submits the form at `action` with the page's CSRF token and request id, plus `fields`.
    pub async fn submit(&mut self, action: &str, fields: &[(&str, &str)]) -> Seen {
        let mut form: Vec<(String, String)> = Vec::new();
        for hidden in [
            "csrf_token",
            "request",
            "post_logout_redirect_uri",
            "client_id",
            "state",
            "user_code",
        ] {
            if let Some(v) = self.hidden(hidden) {
                form.push((hidden.to_owned(), v));
            }
        }
        form.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.post_form(action, &form).await
    }

    /// Posts exactly `form` to `action`.
    pub async fn post_form(&mut self, action: &str, form: &[(String, String)]) -> Seen {
        let response = self
            .http
            .post(self.server.url(action))
            .form(form)
            .send()
            .await
            .expect("post");
        self.see(response).await
    }

    /// Fills in the login form.
    pub async fn login(&mut self, username: &str, password: &str) -> Seen {
        self.submit("/login", &[("username", username), ("password", password)])
            .await
    }

    /// Opens `path` (with its query) on the server.
    pub async fn get(&mut self, path: &str) -> Seen {
        let response = self
            .http
            .get(self.server.url(path))
            .send()
            .await
            .expect("get");
        self.see(response).await
    }

    /// Answers the consent form.
    pub async fn consent(&mut self, decision: &str) -> Seen {
        self.submit("/consent", &[("decision", decision)]).await
    }
}
