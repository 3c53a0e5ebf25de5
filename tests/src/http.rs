//! Signing in over HTTP.

use anyhow::{Context, bail};
use casebook_shared::api::{CaseSummary, Me, SignIn};

/// A signed-in HTTP session.
pub struct Session {
    /// The user.
    pub me: Me,
    /// The `Cookie` header value carrying the session.
    pub cookie: String,
    base: String,
}

/// The demo password (every demo account has it).
pub const PASSWORD: &str = casebook_server::demo::DEMO_PASSWORD;

impl Session {
    /// Signs in as `username` with the demo password.
    pub async fn sign_in(base: &str, username: &str) -> anyhow::Result<Self> {
        Self::sign_in_with(base, username, PASSWORD).await
    }

    /// Signs in as `username` with `password`.
    pub async fn sign_in_with(base: &str, username: &str, password: &str) -> anyhow::Result<Self> {
        let response = reqwest::Client::new()
            .post(format!("{base}/api/session"))
            .json(&SignIn {
                username: username.into(),
                password: password.into(),
            })
            .send()
            .await
            .context("signing in")?;
        if !response.status().is_success() {
            bail!("sign-in failed: {}", response.status());
        }
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                v.split(';')
                    .next()
                    .filter(|c| c.starts_with("casebook_session="))
            })
            .context("no session cookie")?
            .to_owned();
        let me = response.json().await?;
        Ok(Self {
            me,
            cookie,
            base: base.to_owned(),
        })
    }

    /// Signs in the two demo co-workers of the North team (`worker.north1`, `worker.north2`)
    /// and returns both sessions with a case they share.
    pub async fn co_workers(base: &str) -> anyhow::Result<(Self, Self, CaseSummary)> {
        let jo = Self::sign_in(base, "worker.north1").await?;
        let lee = Self::sign_in(base, "worker.north2").await?;
        let theirs: Vec<_> = lee.cases().await?.into_iter().map(|c| c.id).collect();
        let case = jo
            .cases()
            .await?
            .into_iter()
            .find(|c| theirs.contains(&c.id))
            .context("the demo has a co-worked case")?;
        Ok((jo, lee, case))
    }

    /// The user's case list.
    pub async fn cases(&self) -> anyhow::Result<Vec<CaseSummary>> {
        let response = reqwest::Client::new()
            .get(format!("{}/api/cases", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("case list: {}", response.status());
        }
        Ok(response.json().await?)
    }
}
