package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Batching of inserts. Each attest makes several single-document inserts
// (replay claim, session revision, outcome, publication marker), and many
// attests are in flight at once. On FerretDB each insert command is its own
// SQLite transaction and commit; on MongoDB each is a round trip and, with
// w=majority, a wait for replication. So the inserts that concurrent callers
// make into one collection are sent together, as one unordered insertMany,
// and each caller is told what happened to its own document:
//
//   - inserted: the server acknowledged the batch and reported no error for
//     the document's index;
//   - domain.ErrConflict: a duplicate key (code 11000) at its index, the
//     same answer a single insert gives, and only to that caller;
//   - another write error at its index: that error, to that caller only;
//   - the whole command failed (network, timeout, write concern): every
//     caller of the batch gets the error, as each would have from its own
//     insert (the document may or may not be stored; callers retry, and a
//     retry meets its own document as a conflict, exactly as before).
//
// A caller returns only once its document is acknowledged (or refused), so
// nothing a caller was told is stored can be lost by killing the process.
// A batch goes out when it holds BatchOptions.MaxDocs documents, or when
// the oldest document in it has waited BatchOptions.Delay; documents queued
// while the previous batch of the collection was in flight go out at once.
// The delay is only waited while callers are concurrent: after a batch of
// one document the next document goes at once, so a lone caller (a quiet
// worker) never waits for company that is not coming.
// A caller whose context ends before its batch is sent is left out of it
// (and gets its context's error); one whose context ends while the batch is
// in flight gets the error at once, and the batch goes on for the others.

// BatchOptions group the inserts of concurrent callers per collection.
type BatchOptions struct {
	// MaxDocs is the most documents one insertMany carries. 1 or less
	// turns batching off: each insert is its own insertOne, in the
	// caller's goroutine.
	MaxDocs int
	// Delay is how long the first document of a batch waits for others
	// when nothing else is queued, as long as the previous batch held more
	// than one document. 0 sends at once whatever is queued: batches then
	// form only while the previous one is in flight.
	Delay time.Duration
}

// DefaultBatch is what Open uses unless told otherwise.
var DefaultBatch = BatchOptions{MaxDocs: 64, Delay: time.Millisecond}

// Option configures Open.
type Option func(*Store)

// WithBatching sets how inserts are grouped (see BatchOptions).
func WithBatching(o BatchOptions) Option {
	return func(s *Store) { s.batchOpts = o }
}

// flushTimeout bounds one insertMany, as the client's operation timeout
// (Open) bounds a single insert; it does not depend on any caller's context,
// so one caller's cancellation never fails the others.
const flushTimeout = 10 * time.Second

// errClosed is returned to inserts after Close.
var errClosed = errors.New("store closed")

// BatchStats counts what the batchers sent (for metrics and benchmarks).
type BatchStats struct {
	Batches   int64 // insertMany commands sent
	Documents int64 // documents in them
}

type batcher struct {
	coll func(context.Context) (*mongo.Collection, error)
	opts BatchOptions
	in   chan *pendingInsert
	done chan struct{}

	mu     sync.RWMutex // held for reading while sending on in
	closed bool

	batches, docs *atomic.Int64
}

type pendingInsert struct {
	ctx context.Context
	doc any
	at  time.Time
	res chan error // buffered: the batcher never blocks on a caller that left
}

func newBatcher(c func(context.Context) (*mongo.Collection, error), o BatchOptions, batches, docs *atomic.Int64) *batcher {
	b := &batcher{coll: c, opts: o, in: make(chan *pendingInsert, 4*o.MaxDocs), done: make(chan struct{}),
		batches: batches, docs: docs}
	go b.run()
	return b
}

// insert queues doc for the collection's next batch and waits for its own
// result: nil, errConflict or an error.
func (b *batcher) insert(ctx context.Context, doc any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := &pendingInsert{ctx: ctx, doc: doc, at: time.Now(), res: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errClosed
	}
	select {
	case b.in <- p:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-p.res:
		return err
	case <-ctx.Done():
		// Like a single insert whose context ended in flight: the
		// document may be stored; a retry finds it as a conflict.
		return ctx.Err()
	}
}

// close stops taking inserts, sends what is queued and waits for it.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.in)
	}
	b.mu.Unlock()
	<-b.done
}

func (b *batcher) run() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	batch := make([]*pendingInsert, 0, b.opts.MaxDocs)
	last := 2 // documents in the previous batch; lingering starts on
	for {
		first, ok := <-b.in
		if !ok {
			return
		}
		batch = append(batch[:0], first)
		deadline := first.at
		if last > 1 {
			deadline = deadline.Add(b.opts.Delay)
		}
		open := true
	collect:
		for len(batch) < b.opts.MaxDocs {
			select { // whatever is queued goes without waiting
			case p, ok := <-b.in:
				if !ok {
					open = false
					break collect
				}
				batch = append(batch, p)
				continue
			default:
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				break collect
			}
			timer.Reset(wait)
			select {
			case p, ok := <-b.in:
				timer.Stop()
				if !ok {
					open = false
					break collect
				}
				batch = append(batch, p)
			case <-timer.C:
				break collect
			}
		}
		last = len(batch)
		b.flush(batch)
		clear(batch)
		if !open {
			return
		}
	}
}

// flush sends one insertMany for the batch's live callers and gives each
// its own result.
func (b *batcher) flush(batch []*pendingInsert) {
	live := batch[:0:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.res <- err // left before it was sent: not written
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	docs := make([]any, len(live))
	for i, p := range live {
		docs[i] = p.doc
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	c, err := b.coll(ctx) // fails only while the store's layout is undecided
	if err == nil {
		_, err = c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		b.batches.Add(1)
		b.docs.Add(int64(len(live)))
	}
	cancel()
	for i, res := range insertResults(err, len(live)) {
		live[i].res <- res
	}
}

// insertResults turns one unordered insertMany's error into each
// document's result, by the index each write error names.
func insertResults(err error, n int) []error {
	out := make([]error, n)
	if err == nil {
		return out
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) {
		for i := range out {
			out[i] = err
		}
		return out
	}
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= n {
			// Not one of ours: nothing can be said of any document.
			for i := range out {
				out[i] = err
			}
			return out
		}
		if duplicateKeyCode(we.Code, we.Message) {
			out[we.Index] = errConflict
		} else {
			out[we.Index] = fmt.Errorf("insert: %w", we.WriteError)
		}
	}
	if bwe.WriteConcernError != nil {
		// Written, but not acknowledged as durable: not an answer.
		for i := range out {
			if out[i] == nil {
				out[i] = fmt.Errorf("insert: %w", bwe.WriteConcernError)
			}
		}
	}
	return out
}

// duplicateKeyCode is mongo.IsDuplicateKeyError for one write error.
func duplicateKeyCode(code int, msg string) bool {
	switch code {
	case 11000, 11001, 12582:
		return true
	case 16460:
		return strings.Contains(msg, " E11000 ")
	}
	return false
}
