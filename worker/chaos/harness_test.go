//go:build chaos

package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/repo/mongostore"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// Names under the default prefix "tat".
const (
	attestSubject   = "tat.attest.requests"
	profileSubject  = "tat.profiles.commands"
	userSubject     = "tat.users.commands"
	attestStream    = "TAT_ATTEST"
	eventsStream    = "TAT_EVENTS"
	deadStream      = "TAT_DEADLETTER"
	attestConsumer  = "attest-workers"
	deadLetterSubj  = "tat.deadletter.attest"
	userEmail       = "Ada@Example.com"
	tokenEmailClaim = "ada@example.com"
)

// harness is what one chaos test runs on: the servers' addresses, a client
// connection, the store, the identity provider and the workers.
type harness struct {
	t         *testing.T
	dir       string
	natsURL   string // one URL or a comma-separated list
	mongoURI  string
	database  string
	masterKey string // base64, shared by every worker
	nc        *nats.Conn
	js        jetstream.JetStream
	store     *mongostore.Store
	idp       *workertest.Issuer
	profileID string
	userID    string
	workers   []*workerProc
	baseline  uint64 // events stored before the load
	began     time.Time
}

// logf logs with the time since the harness began.
func (h *harness) logf(format string, args ...any) {
	h.t.Helper()
	h.t.Logf("[%6.2fs] %s", time.Since(h.began).Seconds(), fmt.Sprintf(format, args...))
}

func newHarness(t *testing.T, natsURL, mongoURI string) *harness {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	h := &harness{
		t: t, dir: t.TempDir(), natsURL: natsURL, began: time.Now(), mongoURI: mongoURI, database: "tat",
		masterKey: base64.StdEncoding.EncodeToString(key),
		idp:       workertest.NewIssuer(t, "https://idp.chaos.example/", "chaos-app"),
	}
	nc, err := nats.Connect(natsURL, nats.Name("chaos-test"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	h.nc = nc
	if h.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if h.store, err = mongostore.Open(context.Background(), mongoURI, h.database); err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = h.store.Close(context.Background()) })
	return h
}

// setup creates the profile and the user through the running workers and
// waits until every running worker's view holds both, so no request of
// the load can reach a worker that has not seen them yet.
func (h *harness) setup() {
	h.t.Helper()
	rep := h.command(profileSubject, "chaos-profile", map[string]any{
		"change_id": "chaos-profile", "op": "upsert", "profile": map[string]any{
			"name": "Chaos IdP", "issuer": h.idp.Iss, "audience": h.idp.Aud,
			"public_keys":       []string{h.idp.PublicPEM()},
			"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"},
		}})
	h.profileID = rep["profile"].(map[string]any)["profile_id"].(string)
	rep = h.command(userSubject, "chaos-user", map[string]any{
		"change_id": "chaos-user", "op": "upsert", "user": map[string]any{
			"emails": []any{map[string]any{"email": userEmail, "verified": true}},
			"name":   map[string]any{"first_name": "Ada", "last_name": "Lovelace"},
		}})
	h.userID = rep["user"].(map[string]any)["user_id"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for _, w := range h.workers {
		if !w.running() {
			continue
		}
		for {
			p, err1 := w.metric("tat_view_profiles")
			u, err2 := w.metric("tat_view_users")
			if err1 == nil && err2 == nil && p >= 1 && u >= 1 {
				break
			}
			if time.Now().After(deadline) {
				h.t.Fatalf("worker %s did not see the profile and user (profiles %v, users %v)", w.name, p, u)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	info := h.streamInfo(eventsStream)
	h.baseline = info.State.Msgs
	h.logf("set up: profile and user in every worker's view")
}

// command publishes an admin command with a reply inbox and returns the
// decoded reply, which must have status 200.
func (h *harness) command(subject, id string, payload any) map[string]any {
	h.t.Helper()
	body, _ := json.Marshal(payload)
	inbox := nats.NewInbox()
	sub, err := h.nc.SubscribeSync(inbox)
	if err != nil {
		h.t.Fatal(err)
	}
	defer sub.Unsubscribe()
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(worker.ReplyHeader, inbox)
	msg.Header.Set(jetstream.MsgIDHeader, id)
	h.publishRetry(msg, 30*time.Second)
	m, err := sub.NextMsg(30 * time.Second)
	if err != nil {
		h.t.Fatalf("no reply to %s: %v", id, err)
	}
	var out map[string]any
	if err := json.Unmarshal(m.Data, &out); err != nil {
		h.t.Fatalf("reply to %s is not JSON: %s", id, m.Data)
	}
	if out["status_code"] != float64(200) {
		h.t.Fatalf("command %s: %v", id, out)
	}
	return out
}

// publishRetry publishes msg via JetStream until the stream acknowledges
// it; retries carry the same Nats-Msg-Id, so a publish whose ack was lost
// is stored once.
func (h *harness) publishRetry(msg *nats.Msg, timeout time.Duration) {
	h.t.Helper()
	if err := publishRetry(h.js, msg, timeout); err != nil {
		h.t.Fatal(err)
	}
}

func publishRetry(js jetstream.JetStream, msg *nats.Msg, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := js.PublishMsg(ctx, msg)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("publish %s (%s): %w", msg.Subject, msg.Header.Get(jetstream.MsgIDHeader), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// streamInfo returns the stream's info, retrying through outages.
func (h *harness) streamInfo(name string) *jetstream.StreamInfo {
	h.t.Helper()
	var last error
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := h.js.Stream(ctx, name)
		if err == nil {
			var info *jetstream.StreamInfo
			info, err = s.Info(ctx)
			if err == nil {
				cancel()
				return info
			}
		}
		cancel()
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	h.t.Fatalf("stream %s info: %v", name, last)
	return nil
}

// tryStreamInfo is streamInfo without retries or failing.
func (h *harness) tryStreamInfo(name string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := h.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

func (h *harness) consumerInfo() (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := h.js.Consumer(ctx, attestStream, attestConsumer)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

// progress is the number of events stored since the load began (about one
// per request done); -1 while the stream cannot be asked.
func (h *harness) progress() int {
	info, err := h.tryStreamInfo(eventsStream)
	if err != nil {
		return -1
	}
	return int(info.State.Msgs - h.baseline)
}

// waitProgress waits until at least n requests have their outcome.
func (h *harness) waitProgress(n int, timeout time.Duration) int {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p := h.progress()
		if p >= n {
			return p
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("only %d outcomes after %s (waiting for %d)", p, timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redeliveries is how many deliveries of the attest consumer were repeats
// (deliveries minus messages delivered).
func (h *harness) redeliveries() uint64 {
	h.t.Helper()
	for range 50 {
		ci, err := h.consumerInfo()
		if err == nil {
			return ci.Delivered.Consumer - ci.Delivered.Stream
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.t.Fatal("attest consumer info unavailable")
	return 0
}

// oneWorker starts a NATS server, a store process and one worker, and sets
// up the profiles and users of the load: the opening of most tests.
func oneWorker(t *testing.T) (*natsNode, *ferretProc, *harness, *workerProc) {
	t.Helper()
	nats := startNATSNode(t)
	fe := startFerretProc(t)
	h := newHarness(t, nats.url(), fe.uri())
	w := h.newWorker("w1")
	w.start()
	h.setup()
	return nats, fe, h, w
}
