//! Dashboard pages rendered once for everyone who may see the same thing.
//!
//! A dashboard page (`/d/…`) depends on its address, on the viewer's role
//! (editors get edit controls, anonymous visitors of a public dashboard a
//! sign-in link) and on the viewer's name in the top bar. Pages are rendered
//! with a placeholder name and kept per address and role; each answer puts
//! the viewer's own name in. A kept page is dropped as soon as any stream
//! stores new data or any chart or dashboard changes (both announced by
//! Postgres, see `live.rs`), so it never shows less than rendering anew
//! would; and it is used for at most `max_age` (the shortest refresh)
//! should an announcement be missed. Sign-in and roles are checked for every
//! request before this (`auth.rs`).

use app::accounts::{Account, Role};
use app::announced::Announced;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bytes of pages kept at most; beyond it, pages no longer current are
/// dropped, then all (many addresses differing only in their query).
const MAX_BYTES: usize = 32 << 20;

type Key = (String, Option<Role>);

pub struct PageCache {
    pages: Announced<Key, Arc<Page>>,
    /// Stands for the viewer's name while a page is rendered: random, and
    /// shaped like a username so it is rendered as one.
    placeholder: String,
    renders: AtomicU64,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    /// The page's bytes between the places where the viewer's name goes.
    pieces: Vec<Bytes>,
}

impl PageCache {
    pub fn new(max_age: Duration) -> Self {
        PageCache {
            pages: Announced::new(max_age, MAX_BYTES, |page| page.size()),
            placeholder: format!("viewer-{:032x}", rand::random::<u128>()),
            renders: AtomicU64::new(0),
        }
    }

    /// New data or definitions were committed: every kept page is stale.
    pub fn changed(&self) {
        self.pages.changed();
    }

    /// How many pages were rendered rather than reused.
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }
}

impl Default for PageCache {
    fn default() -> Self {
        PageCache::new(Duration::from_secs(1))
    }
}

impl Page {
    /// Splits the rendered page around each occurrence of `placeholder`.
    fn new(status: StatusCode, mut headers: HeaderMap, body: Bytes, placeholder: &str) -> Page {
        headers.remove(header::CONTENT_LENGTH);
        let needle = placeholder.as_bytes();
        let mut pieces = Vec::new();
        let (mut start, mut at) = (0, 0);
        while at + needle.len() <= body.len() {
            if body[at..].starts_with(needle) {
                pieces.push(body.slice(start..at));
                at += needle.len();
                start = at;
            } else {
                at += 1;
            }
        }
        pieces.push(body.slice(start..));
        Page {
            status,
            headers,
            pieces,
        }
    }

    fn size(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// May this page be shown to others with the same role?
    fn shareable(&self) -> bool {
        self.status == StatusCode::OK && !self.headers.contains_key(header::SET_COOKIE)
    }

    /// The page as `username` gets it.
    fn answer(&self, username: &str) -> Response {
        let names = (self.pieces.len() - 1) * username.len();
        let mut body = Vec::with_capacity(self.size() + names);
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                body.extend_from_slice(username.as_bytes());
            }
            body.extend_from_slice(piece);
        }
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

/// Answers dashboard pages from the cache, rendering and keeping them when
/// there is no current one. Runs after `auth::authenticate`.
pub async fn serve(
    State(cache): State<Arc<PageCache>>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::GET || !request.uri().path().starts_with("/d/") {
        return next.run(request).await;
    }
    let account = request.extensions().get::<Account>();
    let key = (request.uri().to_string(), account.map(|a| a.role));
    if let Some(page) = cache.pages.get(&key) {
        return page.answer(account.map_or("", |a| a.username.as_str()));
    }
    // Rendered for anyone with the role: the placeholder stands for the name.
    let username = match request.extensions_mut().get_mut::<Account>() {
        Some(account) => std::mem::replace(&mut account.username, cache.placeholder.clone()),
        None => String::new(),
    };

    let generation = cache.pages.generation();
    cache.renders.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = next.run(request).await.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "rendering a dashboard page failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered; retry shortly\n",
            )
                .into_response();
        }
    };
    let page = Page::new(parts.status, parts.headers, body, &cache.placeholder);
    let response = page.answer(&username);
    if page.shareable() {
        cache.pages.keep(key, Arc::new(page), generation);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> Page {
        Page::new(
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from(body.to_string()),
            "NAME",
        )
    }

    async fn text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn every_placeholder_becomes_the_viewers_name() {
        let page = page(r#"<meta content="NAME viewer"><span>NAME (viewer)</span>NAM"#);
        assert_eq!(
            text(page.answer("ann")).await,
            r#"<meta content="ann viewer"><span>ann (viewer)</span>NAM"#
        );
        assert_eq!(text(page.answer("")).await.matches("NAME").count(), 0);
        let edges = super::tests::page("NAMENAME");
        assert_eq!(text(edges.answer("bo")).await, "bobo");
        assert_eq!(text(super::tests::page("").answer("bo")).await, "");
    }

    #[test]
    fn a_page_rendered_before_a_change_is_not_kept_or_used() {
        let cache = PageCache::new(Duration::from_secs(60));
        let key: Key = ("/d/a".into(), Some(Role::Viewer));
        let rendered = Arc::new(page("a"));
        let started = cache.pages.generation();
        cache.changed();
        cache.pages.keep(key.clone(), rendered, started);
        assert!(
            cache.pages.get(&key).is_none(),
            "rendered before the change"
        );

        let current = Arc::new(page("a"));
        cache
            .pages
            .keep(key.clone(), current, cache.pages.generation());
        assert!(cache.pages.get(&key).is_some());
        assert!(
            cache
                .pages
                .get(&("/d/a".into(), Some(Role::Editor)))
                .is_none()
        );
        cache.changed();
        assert!(cache.pages.get(&key).is_none(), "stale after a change");
    }

    #[test]
    fn pages_expire_after_max_age() {
        let cache = PageCache::new(Duration::from_millis(20));
        let key: Key = ("/d/a".into(), None);
        cache
            .pages
            .keep(key.clone(), Arc::new(page("a")), cache.pages.generation());
        assert!(cache.pages.get(&key).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.pages.get(&key).is_none());
    }
}
