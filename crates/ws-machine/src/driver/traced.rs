//! Running a phase inside a `tracing` span, at the cost of one pointer.
//!
//! `tracing::Instrument` keeps the span itself in the future, about 40
//! bytes, and every idle machine holds its task's future. Here the span is
//! boxed, and only when it is enabled (a subscriber wants it): without one,
//! the wrapper is a null pointer and each poll checks it.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tracing::Span;

pin_project_lite::pin_project! {
    /// `inner`, entering `span` (if any) for every poll.
    pub(crate) struct Traced<F> {
        span: Option<Box<Span>>,
        #[pin]
        inner: F,
    }
}

/// Runs `inner` inside `span`.
pub(crate) fn traced<F: Future>(span: Span, inner: F) -> Traced<F> {
    Traced {
        span: (!span.is_disabled()).then(|| Box::new(span)),
        inner,
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.as_deref().map(Span::enter);
        this.inner.poll(cx)
    }
}
