//! The pages that keep a request waiting for the person: login (with "Sign in with a
//! passkey" when any user has one), the second factor (a code, or one of the user's
//! passkeys) and consent. Each keeps the request in the store (`pending`) and binds
//! its form's CSRF token, and a passkey's challenge, to it.

use super::Step;
use crate::oauth::authorize_request::AuthRequest;
use crate::oauth::interaction::consent::{resources_shown, scope_description};
use crate::oauth::interaction::facts;
use crate::oauth::interaction::pending::{Awaiting, Kept};
use crate::store::Session;
use crate::throttle;
use crate::web::{csrf, page, passkey};
use actix_web::HttpResponse;
use serde_json::{Value, json};

impl Step<'_> {
    /// Keeps `request` in the store, waiting for `awaiting`: the id its page's form
    /// names.
    async fn wait(
        &self,
        request: &AuthRequest,
        kept: Option<Kept>,
        awaiting: Awaiting,
    ) -> Result<String, HttpResponse> {
        let address = throttle::network(&self.registry.limits, self.ip.0).to_string();
        self.pendings()
            .remember(request, kept, awaiting, &address)
            .await
            .map_err(|r| self.refused(request, r))
    }

    /// Renders a page whose form continues `request`, kept under `id`: puts the id,
    /// the client's name and a CSRF token bound to it in the page. With `scripts` the
    /// page may run this server's own script (the passkey pages).
    async fn render(
        &self,
        request: &AuthRequest,
        id: String,
        template: &str,
        mut context: Value,
        scripts: bool,
    ) -> HttpResponse {
        let client = self.client(&request.client_id).await;
        context["client_name"] = json!(client.as_ref().map_or("", |c| c.name.as_str()));
        context["document_host"] = json!(client.as_ref().and_then(|c| c.document_host.as_deref()));
        context["request_id"] = json!(id);
        let binding = csrf::Binding::Pending(id);
        let mut response = page::render_form(
            self.req,
            self.state,
            self.registry,
            template,
            &binding,
            context,
            Some(&request.redirect_uri),
        );
        if scripts {
            page::allow_own_scripts(&mut response, &[&request.redirect_uri]);
        }
        response
    }

    /// The login form for `request`, with `error` shown when a previous try failed.
    pub(crate) async fn login_page(
        &self,
        request: &AuthRequest,
        kept: Option<Kept>,
        error: Option<(&str, &str)>,
    ) -> Result<HttpResponse, HttpResponse> {
        let (message, username) = match error {
            Some((message, username)) => (Some(message), username),
            None => (None, request.login_hint.as_deref().unwrap_or_default()),
        };
        let client = self.client(&request.client_id).await;
        let providers: Vec<_> = self
            .registry
            .providers()
            .iter()
            .filter(|p| client.as_ref().is_some_and(|c| c.allows_provider(&p.id)))
            .collect();
        let buttons: Vec<_> = providers
            .iter()
            .map(|p| json!({"id": p.id, "name": p.name}))
            .collect();
        let mut context = json!({"username": username, "error": message, "providers": buttons});
        let id = self.wait(request, kept, Awaiting::Login).await?;
        let passkeys = self.registry.has_passkeys();
        if passkeys {
            // "Sign in with a passkey": a challenge bound to this pending request.
            let purpose = passkey::challenge::Purpose::Login(&id);
            let now = self.state.clock.now();
            let challenge = passkey::challenge::issue(self.state, &purpose, now)
                .map_err(|e| self.unavailable(e))?;
            let rp_id = &self.registry.passkeys.rp_id;
            context["passkey"] = json!({"challenge": challenge, "rp_id": rp_id});
        }
        let mut response = self.render(request, id, "login.html", context, false).await;
        if !providers.is_empty() || passkeys {
            // A provider's button ends at its authorization endpoint: form-action must
            // allow it, beside the client's redirect URI; the passkey button is a
            // script of ours.
            let targets: Vec<String> = providers
                .iter()
                .map(|p| self.state.upstreams.authorization_target(p))
                .collect();
            let mut all: Vec<&str> = vec![&request.redirect_uri];
            all.extend(targets.iter().map(String::as_str));
            let csp = if passkeys {
                crate::http::content_security_policy_with_scripts(&all)
            } else {
                crate::http::content_security_policy(&all)
            };
            if let Some(csp) = csp {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, csp);
            }
        }
        Ok(response)
    }

    /// The second-factor page for `request`, offering the factors the session's user
    /// has (a code field; their passkeys, by a challenge bound to this request and
    /// the user), with `error` shown when a previous attempt failed.
    pub(crate) async fn second_factor_page(
        &self,
        request: &AuthRequest,
        session: &Session,
        kept: Option<Kept>,
        error: Option<&str>,
    ) -> Result<HttpResponse, HttpResponse> {
        let user = facts::local_user(self.registry, &session.identity);
        let factors: Vec<&str> = user
            .map(|u| u.second_factors().iter().map(|f| f.as_str()).collect())
            .unwrap_or_default();
        let id = self.wait(request, kept, Awaiting::SecondFactor).await?;
        let offer = match user {
            Some(user) => passkey::second::offer(self.state, self.registry, user, &id)
                .map_err(|e| self.unavailable(e))?,
            None => None,
        };
        let scripts = offer.is_some();
        let context = json!({
            "user_name": session.identity.display_name(),
            "factors": factors,
            "passkey": offer,
            "error": error,
        });
        let template = "second_factor.html";
        Ok(self.render(request, id, template, context, scripts).await)
    }

    /// The consent page for `request`: the scopes and resources the client asks for.
    pub(super) async fn consent_page(
        &self,
        request: &AuthRequest,
        session: &Session,
        kept: Option<Kept>,
    ) -> Result<HttpResponse, HttpResponse> {
        let scopes: Vec<_> = request
            .scopes
            .iter()
            .map(|s| json!({"name": s, "description": scope_description(self.registry, s)}))
            .collect();
        let context = json!({
            "user_name": session.identity.display_name(),
            "scopes": scopes,
            "resources": resources_shown(self.registry, &request.resources),
        });
        let id = self.wait(request, kept, Awaiting::Consent).await?;
        Ok(self
            .render(request, id, "consent.html", context, false)
            .await)
    }
}
