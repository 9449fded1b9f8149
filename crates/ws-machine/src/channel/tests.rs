//! Tests of the channels: each operation, the accounting of slots and
//! waiting senders, wake-ups, cancellation, and stress under two threads.

use std::time::Duration;

use futures_sink::Sink;
use tokio::time::timeout;

use super::*;

const WAIT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn values_arrive_in_order_and_the_end_follows_the_last_sender() {
    let (tx, mut rx) = channel(4);
    let tx2 = tx.clone();
    tx.send(1).await.expect("room");
    tx2.send(2).await.expect("room");
    drop(tx);
    assert_eq!(rx.recv().await, Some(1));
    tx2.try_send(3).expect("room");
    drop(tx2);
    assert_eq!(rx.recv().await, Some(2));
    assert_eq!(rx.recv().await, Some(3));
    assert_eq!(rx.recv().await, None);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[tokio::test]
async fn a_full_channel_refuses_then_waits_then_takes() {
    let (tx, mut rx) = channel(2);
    tx.try_send(1).expect("room");
    tx.try_send(2).expect("room");
    assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
    assert_eq!(tx.capacity(), 0);
    let waiting = tokio::spawn({
        let tx = tx.clone();
        async move { tx.send(3).await }
    });
    // The waiting sender cannot finish until a value is taken.
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    assert_eq!(rx.recv().await, Some(1));
    timeout(WAIT, waiting)
        .await
        .expect("the sender got room")
        .expect("no panic")
        .expect("sent");
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(tx.capacity(), 2);
}

#[tokio::test]
async fn a_cancelled_reserve_or_an_unused_permit_loses_no_slot() {
    let (tx, mut rx) = channel::<u32>(1);
    let permit = tx.reserve().await.expect("room");
    assert_eq!(tx.capacity(), 0);
    // A second reserve must wait; cancel it.
    assert!(
        timeout(Duration::from_millis(20), tx.reserve())
            .await
            .is_err()
    );
    drop(permit);
    assert_eq!(tx.capacity(), 1);
    let owned = tx.try_reserve_owned().expect("room");
    assert!(tx.try_reserve_owned().is_none());
    drop(owned);
    tx.reserve()
        .await
        .expect("room")
        .send(7)
        .expect("the receiver is alive");
    assert_eq!(rx.recv().await, Some(7));
    assert_eq!(tx.capacity(), 1);
}

#[tokio::test]
async fn closing_refuses_new_values_but_keeps_those_sent() {
    let (tx, mut rx) = channel(4);
    tx.send("kept").await.expect("room");
    let blocked = {
        let tx = tx.clone();
        tokio::spawn(async move {
            // Fill the channel, then wait for room that never comes.
            while tx.try_send("filler").is_ok() {}
            tx.send("refused").await
        })
    };
    tokio::task::yield_now().await;
    rx.close();
    let refused = timeout(WAIT, blocked)
        .await
        .expect("the waiting sender was released")
        .expect("no panic");
    assert_eq!(refused, Err(SendError("refused")));
    assert!(tx.is_closed());
    assert!(matches!(
        tx.try_send("late"),
        Err(TrySendError::Closed("late"))
    ));
    assert_eq!(rx.recv().await, Some("kept"));
    let mut rest = 0;
    while let Ok(value) = rx.try_recv() {
        assert_eq!(value, "filler");
        rest += 1;
    }
    assert_eq!(rest, 3);
}

#[tokio::test]
async fn after_closing_the_end_waits_only_for_reserved_slots() {
    let (tx, mut rx) = channel(4);
    tx.send(1).await.expect("room");
    let permit = tx.reserve().await.expect("room");
    rx.close();
    // A sender is still alive, but only the reserved slot can bring more.
    assert_eq!(rx.recv().await, Some(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let receiver = tokio::spawn(async move { (rx.recv().await, rx.recv().await) });
    tokio::task::yield_now().await;
    permit
        .send(2)
        .expect("a slot reserved before closing is still taken");
    let got = timeout(WAIT, receiver)
        .await
        .expect("ended")
        .expect("no panic");
    assert_eq!(got, (Some(2), None));

    // An unused reserved slot ends it too.
    let (tx, mut rx) = channel::<u8>(4);
    let permit = tx.reserve().await.expect("room");
    rx.close();
    let receiver = tokio::spawn(async move { rx.recv().await });
    tokio::task::yield_now().await;
    drop(permit);
    let got = timeout(WAIT, receiver)
        .await
        .expect("ended")
        .expect("no panic");
    assert_eq!(got, None);
    assert!(tx.is_closed());
}

#[tokio::test]
async fn a_waiting_receiver_is_woken_by_a_send_and_by_the_last_drop() {
    let (tx, mut rx) = channel(1);
    let receiver = tokio::spawn(async move {
        let first = rx.recv().await;
        let end = rx.recv().await;
        (first, end)
    });
    tokio::task::yield_now().await;
    tx.send(5).await.expect("room");
    tokio::task::yield_now().await;
    drop(tx);
    let got = timeout(WAIT, receiver)
        .await
        .expect("woken")
        .expect("no panic");
    assert_eq!(got, (Some(5), None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_senders_across_threads_lose_nothing() {
    let (tx, mut rx) = channel::<u64>(8);
    let runtime = tokio::runtime::Handle::current();
    let mut senders = Vec::new();
    for sender in 0..4u64 {
        let tx = tx.clone();
        senders.push(runtime.spawn(async move {
            for i in 0..1_000u64 {
                tx.send(sender * 1_000 + i).await.expect("receiver alive");
            }
        }));
    }
    drop(tx);
    let mut seen = vec![false; 4_000];
    let mut last = [None::<u64>; 4];
    let collect = async {
        while let Some(value) = rx.recv().await {
            let index = usize::try_from(value).expect("small");
            assert!(!seen[index], "{value} twice");
            seen[index] = true;
            // Each sender's values arrive in its order.
            let sender = index / 1_000;
            assert!(last[sender].is_none_or(|previous| previous < value));
            last[sender] = Some(value);
        }
    };
    timeout(WAIT, collect).await.expect("all received");
    assert!(seen.iter().all(|&s| s));
    for sender in senders {
        sender.await.expect("no panic");
    }
}

#[test]
fn an_idle_channel_allocates_no_queue() {
    let (_tx, rx) = channel::<crate::Message>(1024);
    assert_eq!(rx.shared.lock().queue.capacity(), 0);
}

#[test]
fn an_occasional_channel_frees_its_queue_when_it_empties() {
    let (tx, mut rx) = occasional::<u64>(8);
    tx.try_send(1).expect("room");
    tx.try_send(2).expect("room");
    assert!(rx.shared.lock().queue.capacity() > 0);
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(
        rx.shared.lock().queue.capacity() > 0,
        "one value still waits"
    );
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.shared.lock().queue.capacity(), 0);

    let (tx, mut rx) = channel::<u64>(8);
    tx.try_send(1).expect("room");
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(
        rx.shared.lock().queue.capacity() > 0,
        "a stream keeps its queue"
    );
}

// ----- Review: wake-ups, slot accounting, cancellation, moving receivers.

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Counter(AtomicUsize);

impl std::task::Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Counter {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn counting() -> (Waker, Arc<Counter>) {
    let counter = Arc::new(Counter::default());
    (Waker::from(Arc::clone(&counter)), counter)
}

fn poll_with<T>(rx: &mut Receiver<T>, waker: &Waker) -> Poll<Option<T>> {
    rx.poll_recv(&mut Context::from_waker(waker))
}

fn poll_future<F: std::future::Future>(future: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(waker))
}

/// Completes after being polled `n + 1` times (yielding `n` times): a
/// wait that gives up after a few turns, without a clock.
async fn yields(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

#[test]
fn the_receiver_registers_whichever_waker_polls_it_last() {
    let (tx, mut rx) = channel::<u32>(4);
    let (a, a_count) = counting();
    let (b, b_count) = counting();
    assert!(poll_with(&mut rx, &a).is_pending());
    // The same waker again: stored once.
    assert!(poll_with(&mut rx, &a).is_pending());
    // Moved to another task: its waker replaces the first.
    assert!(poll_with(&mut rx, &b).is_pending());
    tx.try_send(1).expect("room");
    assert_eq!((a_count.count(), b_count.count()), (0, 1));
    assert_eq!(poll_with(&mut rx, &b), Poll::Ready(Some(1)));

    // Registered from b, then moved back to a (b's waker still stored).
    assert!(poll_with(&mut rx, &b).is_pending());
    assert!(poll_with(&mut rx, &a).is_pending());
    tx.try_send(2).expect("room");
    assert_eq!((a_count.count(), b_count.count()), (1, 1));
    assert_eq!(poll_with(&mut rx, &a), Poll::Ready(Some(2)));

    // A sender took a's waker (and woke it): the next poll from a must
    // store it again.
    assert!(poll_with(&mut rx, &a).is_pending());
    tx.try_send(3).expect("room");
    assert_eq!(a_count.count(), 2);
    assert_eq!(rx.try_recv(), Ok(3));
    assert!(poll_with(&mut rx, &a).is_pending());
    assert!(poll_with(&mut rx, &a).is_pending());
    tx.try_send(4).expect("room");
    assert_eq!(a_count.count(), 3, "woken again after registering again");
    assert_eq!(poll_with(&mut rx, &a), Poll::Ready(Some(4)));

    // The last sender's drop wakes a receiver polled twice with one waker.
    assert!(poll_with(&mut rx, &a).is_pending());
    assert!(poll_with(&mut rx, &a).is_pending());
    drop(tx);
    assert_eq!(a_count.count(), 4);
    assert_eq!(poll_with(&mut rx, &a), Poll::Ready(None));
    assert_eq!(b_count.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_moved_to_a_new_task_after_waiting_in_another_is_woken() {
    let (tx, rx) = channel::<u32>(1);
    let (hand_over, handed) = tokio::sync::oneshot::channel();
    let (finish, finished) = tokio::sync::oneshot::channel::<()>();
    // Task a waits in vain (its waker stays stored), hands the receiver
    // on and stays alive, so its waker stays valid and distinct.
    let a = tokio::spawn(async move {
        let mut rx = rx;
        assert!(timeout(Duration::from_millis(10), rx.recv()).await.is_err());
        hand_over.send(rx).expect("the test waits");
        let _ = timeout(WAIT, finished).await;
    });
    let mut rx = timeout(WAIT, handed)
        .await
        .expect("handed over")
        .expect("sent");
    let (registered, is_registered) = tokio::sync::oneshot::channel();
    let b = tokio::spawn(async move {
        let mut first = std::pin::pin!(rx.recv());
        // Registered in b before anything is sent.
        let pending = poll_fn(|cx| Poll::Ready(first.as_mut().poll(cx).is_pending())).await;
        assert!(pending);
        registered.send(()).expect("the test waits");
        first.await
    });
    timeout(WAIT, is_registered)
        .await
        .expect("b registered")
        .expect("sent");
    tx.send(9).await.expect("room");
    let got = timeout(WAIT, b)
        .await
        .expect("b was woken")
        .expect("no panic");
    assert_eq!(got, Some(9));
    finish.send(()).expect("a waits");
    timeout(WAIT, a).await.expect("a ends").expect("no panic");
}

#[test]
fn a_sender_woken_for_a_slot_then_cancelled_passes_the_wake_up_on() {
    let (tx, mut rx) = channel::<u32>(1);
    tx.try_send(0).expect("room");
    let (w1, c1) = counting();
    let (w2, c2) = counting();
    let mut first = Box::pin(tx.reserve());
    let mut second = Box::pin(tx.send(2));
    assert!(poll_future(first.as_mut(), &w1).is_pending());
    assert!(poll_future(second.as_mut(), &w2).is_pending());
    assert_eq!(rx.shared.lock().waiting, 2);
    // The freed slot wakes the first waiter ...
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!((c1.count(), c2.count()), (1, 0));
    // ... which is cancelled before it looks: the second is woken.
    drop(first);
    assert_eq!(c2.count(), 1, "the wake-up was passed on");
    assert!(matches!(
        poll_future(second.as_mut(), &w2),
        Poll::Ready(Ok(()))
    ));
    drop(second);
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.shared.lock().waiting, 0);
    assert_eq!(tx.capacity(), 1);
}

#[test]
fn an_unused_permit_wakes_a_waiting_sender() {
    let (tx, mut rx) = channel::<u32>(1);
    let (waker, woken) = counting();

    let mut reserve = Box::pin(tx.reserve());
    let Poll::Ready(Ok(permit)) = poll_future(reserve.as_mut(), &waker) else {
        panic!("room for a permit");
    };
    let mut waiting = Box::pin(tx.send(1));
    assert!(poll_future(waiting.as_mut(), &waker).is_pending());
    drop(permit);
    assert_eq!(woken.count(), 1, "the slot given back wakes the sender");
    assert!(matches!(
        poll_future(waiting.as_mut(), &waker),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(rx.try_recv(), Ok(1));

    let permit = tx.try_reserve_owned().expect("room");
    let mut waiting = Box::pin(tx.send(2));
    assert!(poll_future(waiting.as_mut(), &waker).is_pending());
    drop(permit);
    assert_eq!(woken.count(), 2, "the owned slot given back wakes it too");
    assert!(matches!(
        poll_future(waiting.as_mut(), &waker),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(tx.capacity(), 1);
}

#[test]
fn cancelled_waits_leave_no_count_and_no_slot_behind() {
    let (tx, mut rx) = channel::<u32>(2);
    tx.try_send(1).expect("room");
    tx.try_send(2).expect("room");
    let waker = Waker::noop();
    {
        let mut send = Box::pin(tx.send(3));
        let mut reserve = Box::pin(tx.reserve());
        let mut owned = Box::pin(tx.reserve_owned());
        assert!(poll_future(send.as_mut(), waker).is_pending());
        assert!(poll_future(reserve.as_mut(), waker).is_pending());
        assert!(poll_future(owned.as_mut(), waker).is_pending());
        assert_eq!(rx.shared.lock().waiting, 3);
        // Polled again while still waiting: counted once each.
        assert!(poll_future(send.as_mut(), waker).is_pending());
        assert_eq!(rx.shared.lock().waiting, 3);
    }
    assert_eq!(rx.shared.lock().waiting, 0);
    assert_eq!(tx.capacity(), 0);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(tx.capacity(), 2);
}

/// Counts how many of its values were dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn dropping_the_receiver_releases_waiting_senders_and_drops_every_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let value = || Counted(Arc::clone(&drops));
    let (tx, rx) = channel::<Counted>(2);
    assert!(tx.try_send(value()).is_ok());
    let permit = tx.reserve().await.expect("room");
    let sending = tokio::spawn({
        let tx = tx.clone();
        let counted = value();
        async move { tx.send(counted).await.map_err(|SendError(counted)| counted) }
    });
    let reserving = tokio::spawn({
        let tx = tx.clone();
        async move { tx.reserve().await.map(drop) }
    });
    for _ in 0..100 {
        if rx.shared.lock().waiting == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(rx.shared.lock().waiting, 2, "both senders wait");
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the queued value");
    let handed_back = timeout(WAIT, sending)
        .await
        .expect("released")
        .expect("no panic")
        .expect_err("refused");
    drop(handed_back);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert!(
        timeout(WAIT, reserving)
            .await
            .expect("released")
            .expect("no panic")
            .is_err()
    );
    // A slot reserved before the receiver went: the value comes back.
    let back = permit.send(value());
    assert!(back.is_err(), "the value is handed back");
    drop(back);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    assert!(tx.is_closed());
    assert!(matches!(tx.try_send(value()), Err(TrySendError::Closed(_))));
    assert!(tx.send(value()).await.is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 5);
    assert_eq!(tx.shared.lock().waiting, 0);
}

/// One sender of the stress tests: sends `count` values (its id in the
/// high bits) in random ways, giving up some waits and leaving some
/// permits unused; returns the values accepted, in order, and how many
/// waits it gave up.
async fn stress_sender(tx: Sender<u64>, id: u64, count: u64) -> (Vec<u64>, usize) {
    let mut rng = fastrand::Rng::with_seed(id * 7 + 1);
    let mut accepted = Vec::new();
    let mut gave_up = 0;
    for i in 0..count {
        let value = (id << 32) | i;
        let patience = rng.usize(0..4);
        let sent = match rng.u8(0..7) {
            0 => tx.try_send(value).is_ok(),
            1 => tokio::select! {
                biased;
                sent = tx.send(value) => sent.is_ok(),
                () = yields(patience) => {
                    gave_up += 1;
                    false
                }
            },
            2 => {
                let permit = tokio::select! {
                    biased;
                    permit = tx.reserve() => permit.ok(),
                    () = yields(patience) => {
                        gave_up += 1;
                        None
                    }
                };
                match permit {
                    Some(permit) if rng.bool() => permit.send(value).is_ok(),
                    // Unused: the slot goes back.
                    _ => false,
                }
            }
            3 => {
                let permit = tokio::select! {
                    biased;
                    permit = tx.reserve_owned() => permit.ok(),
                    () = yields(patience) => {
                        gave_up += 1;
                        None
                    }
                };
                match permit {
                    Some(permit) if rng.bool() => permit.send(value).is_ok(),
                    _ => false,
                }
            }
            4 => match tx.reserve().await {
                Ok(permit) => {
                    // Held across a turn of the scheduler.
                    tokio::task::yield_now().await;
                    permit.send(value).is_ok()
                }
                Err(_) => false,
            },
            _ => tx.send(value).await.is_ok(),
        };
        if sent {
            accepted.push(value);
        }
    }
    (accepted, gave_up)
}

/// Receives up to `count` values; with `leave_waiting`, then starts one
/// more wait and gives it up, so this task's waker stays stored.
async fn stress_batch(
    mut rx: Receiver<u64>,
    count: usize,
    leave_waiting: Option<usize>,
) -> (Receiver<u64>, Vec<u64>, bool) {
    let mut got = Vec::new();
    for _ in 0..count {
        match rx.recv().await {
            Some(value) => got.push(value),
            None => return (rx, got, true),
        }
    }
    if let Some(patience) = leave_waiting {
        tokio::select! {
            biased;
            value = rx.recv() => match value {
                Some(value) => got.push(value),
                None => return (rx, got, true),
            },
            () = yields(patience) => {}
        }
    }
    (rx, got, false)
}

/// Receives until the end, in batches run now in this task, now in a
/// task of their own (so on either worker); closes the channel once
/// `close_after` values arrived.
async fn stress_receiver(
    mut rx: Receiver<u64>,
    seed: u64,
    close_after: Option<usize>,
) -> (Receiver<u64>, Vec<u64>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut got = Vec::new();
    let mut closed = false;
    loop {
        let count = rng.usize(1..48);
        let leave_waiting = rng.bool().then(|| rng.usize(0..3));
        let (back, mut batch, ended) = if rng.bool() {
            tokio::spawn(stress_batch(rx, count, leave_waiting))
                .await
                .expect("no panic")
        } else {
            stress_batch(rx, count, leave_waiting).await
        };
        rx = back;
        got.append(&mut batch);
        if ended {
            return (rx, got);
        }
        if !closed && close_after.is_some_and(|after| got.len() >= after) {
            rx.close();
            closed = true;
        }
    }
}

/// Many senders on a small channel, waits given up at random, a
/// receiver that moves between tasks and threads: every value accepted
/// arrives exactly once and in its sender's order, and every slot comes
/// back.
async fn stress(seed: u64, close_after: Option<usize>) {
    const SENDERS: u64 = 8;
    const EACH: u64 = 1_500;
    const CAPACITY: usize = 3;
    let (tx, rx) = channel::<u64>(CAPACITY);
    let senders: Vec<_> = (0..SENDERS)
        .map(|id| tokio::spawn(stress_sender(tx.clone(), seed * 100 + id, EACH)))
        .collect();
    drop(tx);
    let run = async {
        let receiver = tokio::spawn(stress_receiver(rx, seed, close_after));
        let mut accepted = Vec::new();
        let mut gave_up = 0;
        for sender in senders {
            let (values, given_up) = sender.await.expect("no panic");
            accepted.push(values);
            gave_up += given_up;
        }
        let (rx, got) = receiver.await.expect("no panic");
        (accepted, gave_up, rx, got)
    };
    let (accepted, gave_up, rx, got) = timeout(WAIT, run)
        .await
        .expect("the senders and the receiver finished");
    let mut by_sender = vec![Vec::new(); usize::try_from(SENDERS).expect("small")];
    for value in got {
        let id = usize::try_from((value >> 32) % 100).expect("small");
        by_sender[id].push(value);
    }
    let total: usize = accepted.iter().map(Vec::len).sum();
    for (id, (accepted, received)) in accepted.iter().zip(&by_sender).enumerate() {
        assert_eq!(
            accepted, received,
            "sender {id}: every value accepted arrives once, in order"
        );
    }
    match close_after {
        None => {
            assert!(
                total > usize::try_from(SENDERS * EACH / 4).expect("small"),
                "most values went through ({total})"
            );
            assert!(gave_up > 0, "some waits were given up");
        }
        Some(after) => assert!(total >= after, "values went through before the close"),
    }
    let state = rx.shared.lock();
    assert_eq!(state.free, CAPACITY, "every slot came back");
    assert_eq!(state.waiting, 0);
    assert!(state.queue.is_empty());
    drop(state);
    assert_eq!(rx.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_cancelled_waits_and_a_wandering_receiver_lose_nothing() {
    for seed in 1..=3 {
        stress(seed, None).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_closing_under_load_keeps_every_value_accepted() {
    for seed in 4..=6 {
        stress(seed, Some(500)).await;
    }
}

// ----- Regression tests for problems found in review.

#[test]
fn an_owned_permit_outliving_the_last_sender_is_not_the_end() {
    let (tx, mut rx) = channel::<u32>(2);
    let permit = tx.try_reserve_owned().expect("room");
    drop(tx);
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "the held slot can still bring a value"
    );
    let (waker, count) = counting();
    assert!(poll_with(&mut rx, &waker).is_pending());
    permit.send(7).expect("the receiver is alive");
    assert_eq!(count.count(), 1);
    assert_eq!(poll_with(&mut rx, &waker), Poll::Ready(Some(7)));
    assert_eq!(poll_with(&mut rx, &waker), Poll::Ready(None));

    // An unused permit: the end comes when it goes, and wakes.
    let (tx, mut rx) = channel::<u32>(2);
    let permit = tx.try_reserve_owned().expect("room");
    drop(tx);
    assert!(poll_with(&mut rx, &waker).is_pending());
    drop(permit);
    assert_eq!(count.count(), 2);
    assert_eq!(poll_with(&mut rx, &waker), Poll::Ready(None));
}

#[test]
fn a_dropped_receiver_lets_go_of_its_waker() {
    let (tx, mut rx) = channel::<u32>(1);
    let (waker, counter) = counting();
    assert!(poll_with(&mut rx, &waker).is_pending());
    drop(waker);
    assert_eq!(Arc::strong_count(&counter), 2, "the stored waker");
    drop(rx);
    assert_eq!(
        Arc::strong_count(&counter),
        1,
        "a live sender keeps no waker of a dropped receiver"
    );
    drop(tx);
}

#[test]
fn replacing_the_receivers_waker_drops_the_old_one_outside_the_lock() {
    /// A waker whose last drop drops a sender of the channel, as a
    /// task's waker does when it owns the task's future.
    struct OwnsSender {
        _sender: Sender<u32>,
    }
    impl std::task::Wake for OwnsSender {
        fn wake(self: Arc<Self>) {}
    }
    let (done, finished) = std::sync::mpsc::channel();
    // In a thread of its own: on failure it deadlocks.
    std::thread::spawn(move || {
        let (tx, mut rx) = channel::<u32>(1);
        let _keep = tx.clone();
        let old = Waker::from(Arc::new(OwnsSender { _sender: tx }));
        assert!(poll_with(&mut rx, &old).is_pending());
        // Only the stored clone owns the sender now.
        drop(old);
        assert!(poll_with(&mut rx, Waker::noop()).is_pending());
        done.send(()).expect("the test waits");
    });
    assert!(
        finished.recv_timeout(WAIT).is_ok(),
        "replacing the waker deadlocked (or panicked)"
    );
}

// ----- The cooperative budget, the receiving side's states, the size.

/// Receives from a channel that is never empty (a value goes in before
/// each receive) until a task spawned first has run: how many values that
/// took, or `None` if it did not run within `LIMIT`. With `as_stream`,
/// through the `Stream` impl instead of `recv`.
async fn receives_until_another_task_runs(as_stream: bool) -> Option<usize> {
    const LIMIT: usize = 100_000;
    let (tx, mut rx) = channel::<usize>(1);
    let ran = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let ran = Arc::clone(&ran);
        async move { ran.store(true, Ordering::SeqCst) }
    });
    for received in 0..LIMIT {
        if ran.load(Ordering::SeqCst) {
            return Some(received);
        }
        tx.try_send(received).expect("room: one value in, one out");
        let value = if as_stream {
            futures_util::StreamExt::next(&mut rx).await
        } else {
            rx.recv().await
        };
        // A receive sent back to the scheduler keeps its value for later.
        assert_eq!(value, Some(received));
    }
    None
}

#[tokio::test]
async fn a_receive_loop_that_never_waits_still_lets_other_tasks_run() {
    for as_stream in [false, true] {
        let received = timeout(WAIT, receives_until_another_task_runs(as_stream))
            .await
            .expect("the loop finished");
        assert!(
            received.is_some_and(|received| received > 0),
            "the other task ran after some values, not never ({received:?}, stream: {as_stream})"
        );
    }
}

#[tokio::test]
async fn try_recv_and_a_poll_that_finds_nothing_use_no_budget() {
    let (tx, mut rx) = channel::<u32>(1);
    // Many more than a task's budget (tokio's is 128 per turn).
    for i in 0..1_000 {
        tx.try_send(i).expect("room");
        assert_eq!(rx.try_recv(), Ok(i));
        assert!(
            poll_fn(|cx| Poll::Ready(rx.poll_recv(cx)))
                .await
                .is_pending()
        );
    }
    assert!(tokio::task::coop::has_budget_remaining());

    // Values handed out do use it: the receiver says `Pending` with a
    // value waiting once it is spent, and the value stays.
    let mut handed_out = 0;
    let mut sent = 0;
    loop {
        if rx.is_empty() {
            tx.try_send(sent).expect("room");
            sent += 1;
        }
        match poll_fn(|cx| Poll::Ready(rx.poll_recv(cx))).await {
            Poll::Ready(value) => {
                assert_eq!(value, Some(handed_out));
                handed_out += 1;
            }
            Poll::Pending => break,
        }
        assert!(handed_out < 100_000, "the budget never ran out");
    }
    assert!(handed_out > 0);
    assert!(!tokio::task::coop::has_budget_remaining());
    assert_eq!(rx.len(), 1, "the value not handed out still waits");
    assert_eq!(rx.try_recv(), Ok(handed_out), "try_recv takes it anyway");
}

#[test]
fn outside_a_runtime_there_is_no_budget() {
    let (tx, mut rx) = channel::<u32>(1);
    for i in 0..1_000 {
        tx.try_send(i).expect("room");
        assert_eq!(poll_with(&mut rx, Waker::noop()), Poll::Ready(Some(i)));
    }
}

#[test]
fn the_receiving_side_only_moves_forward() {
    let (tx, mut rx) = channel::<u32>(2);
    let permit = tx.try_reserve_owned().expect("room");
    assert_eq!(rx.shared.lock().reception, Reception::Open);
    assert!(!tx.is_closed());
    rx.close();
    rx.close();
    assert_eq!(rx.shared.lock().reception, Reception::Closed);
    assert!(tx.is_closed());
    let shared = Arc::clone(&rx.shared);
    drop(rx);
    assert_eq!(shared.lock().reception, Reception::Gone);
    // Closing cannot bring a receiver back.
    shared.shut(&mut shared.lock(), Reception::Closed);
    assert_eq!(shared.lock().reception, Reception::Gone);
    // A slot reserved before: its value comes back, and so does the slot.
    assert_eq!(permit.send(1).map_err(|e| e.0), Err(1));
    assert_eq!(tx.capacity(), 2);
    assert!(matches!(tx.try_send(2), Err(TrySendError::Closed(2))));
}

#[test]
fn a_receiver_and_a_sender_are_one_pointer() {
    assert_eq!(
        std::mem::size_of::<Receiver<crate::Message>>(),
        std::mem::size_of::<usize>()
    );
    assert_eq!(
        std::mem::size_of::<Sender<crate::Message>>(),
        std::mem::size_of::<usize>()
    );
}

// ----- The sink: backpressure, values handed back, nothing lost when a
// sink is dropped, closed or cancelled.

fn poll_ready<T: Send + 'static>(
    sink: &mut SenderSink<T>,
    waker: &Waker,
) -> Poll<Result<(), SendError<T>>> {
    Pin::new(sink).poll_ready(&mut Context::from_waker(waker))
}

fn start_send<T: Send + 'static>(sink: &mut SenderSink<T>, value: T) -> Result<(), SendError<T>> {
    Pin::new(sink).start_send(value)
}

fn poll_close<T: Send + 'static>(
    sink: &mut SenderSink<T>,
    waker: &Waker,
) -> Poll<Result<(), SendError<T>>> {
    Pin::new(sink).poll_close(&mut Context::from_waker(waker))
}

#[test]
fn a_sink_of_a_full_channel_is_not_ready_until_the_receiver_takes_one() {
    let (tx, mut rx) = channel::<u32>(1);
    let mut sink = tx.sink();
    let (waker, woken) = counting();
    assert!(matches!(poll_ready(&mut sink, &waker), Poll::Ready(Ok(()))));
    assert_eq!(tx.capacity(), 0, "poll_ready reserved the slot");
    start_send(&mut sink, 1).expect("a reserved slot");
    assert!(poll_ready(&mut sink, &waker).is_pending(), "no room");
    assert!(poll_ready(&mut sink, &waker).is_pending(), "still none");
    assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
    assert_eq!(woken.count(), 0);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(woken.count(), 1, "the freed slot wakes the sink");
    assert!(matches!(poll_ready(&mut sink, &waker), Poll::Ready(Ok(()))));
    assert_eq!(tx.capacity(), 0, "and the sink has it");
    start_send(&mut sink, 2).expect("a reserved slot");
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.shared.lock().waiting, 0);
    assert_eq!(tx.capacity(), 1);
}

#[tokio::test]
async fn a_sink_hands_the_value_back_when_nothing_will_take_it() {
    use futures_util::SinkExt;

    // The receiver gone before: `send` returns the value.
    let (tx, rx) = channel::<u32>(1);
    let mut sink = tx.sink();
    drop(rx);
    assert!(sink.is_closed());
    assert!(matches!(sink.send(1).await, Err(SendError(1))));

    // Gone after the sink reserved a slot.
    let (tx, rx) = channel::<u32>(1);
    let mut sink = tx.into_sink();
    let (waker, woken) = counting();
    assert!(matches!(poll_ready(&mut sink, &waker), Poll::Ready(Ok(()))));
    drop(rx);
    assert!(sink.is_closed());
    assert!(matches!(start_send(&mut sink, 2), Err(SendError(2))));

    // Gone while the sink waits for room: the sink is woken, and the value
    // comes back.
    let (tx, rx) = channel::<u32>(1);
    tx.try_send(0).expect("room");
    let mut sink = tx.sink();
    assert!(poll_ready(&mut sink, &waker).is_pending());
    drop(rx);
    assert_eq!(woken.count(), 1, "the receiver's drop wakes the sink");
    assert!(matches!(poll_ready(&mut sink, &waker), Poll::Ready(Ok(()))));
    assert!(matches!(start_send(&mut sink, 3), Err(SendError(3))));

    // Closed by the receiver: new values come back, a reserved slot is
    // still taken.
    let (tx, mut rx) = channel::<u32>(2);
    let mut reserved = tx.sink();
    assert!(matches!(
        poll_ready(&mut reserved, &waker),
        Poll::Ready(Ok(()))
    ));
    let mut idle = tx.sink();
    rx.close();
    assert!(matches!(idle.send(4).await, Err(SendError(4))));
    assert!(!reserved.is_closed(), "its slot is still taken");
    start_send(&mut reserved, 5).expect("the reserved slot");
    assert_eq!(rx.recv().await, Some(5));

    // Closed by its owner: values come back; the other senders go on.
    let (tx, mut rx) = channel::<u32>(2);
    let mut sink = tx.sink();
    sink.close().await.expect("closes");
    assert!(sink.is_closed());
    assert!(matches!(sink.send(6).await, Err(SendError(6))));
    tx.try_send(7).expect("room");
    assert_eq!(rx.try_recv(), Ok(7));
}

#[test]
fn a_sink_dropped_or_closed_while_it_holds_or_waits_for_a_slot_loses_nothing() {
    let (tx, mut rx) = channel::<u32>(1);
    let (w1, c1) = counting();
    // A reserved slot comes back when the sink is dropped ...
    let mut sink = tx.sink();
    assert!(matches!(poll_ready(&mut sink, &w1), Poll::Ready(Ok(()))));
    assert_eq!(tx.capacity(), 0);
    drop(sink);
    assert_eq!(tx.capacity(), 1);
    // ... or closed.
    let mut sink = tx.sink();
    assert!(matches!(poll_ready(&mut sink, &w1), Poll::Ready(Ok(()))));
    assert!(matches!(poll_close(&mut sink, &w1), Poll::Ready(Ok(()))));
    assert_eq!(tx.capacity(), 1);
    drop(sink);

    // A sink woken for a freed slot, then dropped before it looks, passes
    // the wake-up on to the next waiting sender.
    tx.try_send(0).expect("room");
    let mut sink = tx.sink();
    let (w2, c2) = counting();
    let mut other = Box::pin(tx.send(2));
    assert!(poll_ready(&mut sink, &w1).is_pending());
    assert!(poll_future(other.as_mut(), &w2).is_pending());
    assert_eq!(rx.shared.lock().waiting, 2);
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!((c1.count(), c2.count()), (1, 0), "the sink waited first");
    drop(sink);
    assert_eq!(c2.count(), 1, "the wake-up was passed on");
    assert!(matches!(
        poll_future(other.as_mut(), &w2),
        Poll::Ready(Ok(()))
    ));
    drop(other);
    assert_eq!(rx.try_recv(), Ok(2));

    // A sink closed while it waits stops waiting.
    tx.try_send(3).expect("room");
    let mut sink = tx.sink();
    assert!(poll_ready(&mut sink, &w1).is_pending());
    assert_eq!(rx.shared.lock().waiting, 1);
    assert!(matches!(poll_close(&mut sink, &w1), Poll::Ready(Ok(()))));
    assert_eq!(rx.shared.lock().waiting, 0);
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(tx.capacity(), 1);
}

#[test]
fn a_sink_goes_to_other_tasks_and_leaves_the_sender_one_pointer() {
    fn send<T: Send>() {}
    send::<SenderSink<crate::Message>>();
    // What a wait needs is in the sink, not in the sender.
    assert_eq!(
        std::mem::size_of::<Sender<crate::Message>>(),
        std::mem::size_of::<usize>()
    );
}

#[test]
fn start_send_without_poll_ready_sends_if_there_is_room_and_hands_back_if_not() {
    let (tx, mut rx) = channel::<u32>(1);
    let mut sink = tx.sink();
    start_send(&mut sink, 1).expect("room");
    assert!(matches!(start_send(&mut sink, 2), Err(SendError(2))));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_forwarded_into_a_sink_arrives_whole_and_in_order() {
    use futures_util::StreamExt;

    let (tx, mut rx) = channel::<u32>(2);
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(n) = rx.recv().await {
            seen.push(n);
        }
        seen
    });
    timeout(
        WAIT,
        futures_util::stream::iter(0..2_000)
            .map(Ok)
            .forward(tx.into_sink()),
    )
    .await
    .expect("forwarded in time")
    .expect("the receiver is alive");
    // `forward` closed the sink, which held the last sender: the reader ends.
    let seen = timeout(WAIT, reader)
        .await
        .expect("the reader ends")
        .expect("no panic");
    assert_eq!(seen, (0..2_000).collect::<Vec<_>>());
}
