//go:build chaos

package chaos

import (
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// TestChaosDeadLetter makes the store unreachable for one request until it
// has been delivered more than MaxDeliver (2) times, then brings the store
// back. The request ends as the issue says a request that exhausted its
// deliveries ends: one dead letter on tat.deadletter.attest (without the
// payload) and one attest.failed with internal_server_error; the store
// coming back does not turn it into a session afterwards.
func TestChaosDeadLetter(t *testing.T) {
	ns, fe, _, w := inProcessWorker(t)
	h := newHarness(t, ns.url(), fe.uri())
	h.setup()

	fe.stop()
	l := h.plan("dead", 1)
	r := l.reqs[0]
	msg := &nats.Msg{Subject: attestSubject, Data: r.body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, r.id)
	h.publishRetry(msg, 30*time.Second)

	// Wait for more than MaxDeliver deliveries and the dead letter.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ci, err := h.consumerInfo()
		di, derr := h.tryStreamInfo(deadStream)
		if err == nil && derr == nil && ci.Delivered.Consumer > 2 && di.State.Msgs > 0 {
			h.logf("%d deliveries, %d dead letters; store back", ci.Delivered.Consumer, di.State.Msgs)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter after 2 minutes with the store down (consumer %+v, err %v/%v)", ci, err, derr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fe.start()

	sum := h.check(l, checkOpts{allowInternal: true})
	if len(sum.internal) != 1 || sum.internal[0] != r.id {
		t.Errorf("want %s to end in internal_server_error, got %v", r.id, sum.internal)
	}
	if sum.deadLetters != 1 || sum.sessions != 0 {
		t.Errorf("want one dead letter and no session, got %d dead letters, %d sessions", sum.deadLetters, sum.sessions)
	}
	for _, d := range h.deadLetters() {
		if d.MsgID != r.id || d.Stream != attestStream || d.Deliveries < 2 || d.Reason == "" {
			t.Errorf("dead letter = %+v", d)
		}
		var req struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(r.body, &req); err != nil {
			t.Fatal(err)
		}
		sig := req.Token[strings.LastIndex(req.Token, ".")+1:]
		if strings.Contains(d.raw, req.Token) || strings.Contains(d.raw, sig) {
			t.Errorf("dead letter carries the token: %s", d.raw)
		}
	}
	if err := w.Stop(); err != nil {
		t.Errorf("worker did not drain: %v", err)
	}
}

// TestChaosAdminDeadLetter: a profile command that exhausts its deliveries
// while the store is down ends rejected with internal_server_error, with one
// dead letter on tat.deadletter.admin, and is never applied afterwards.
func TestChaosAdminDeadLetter(t *testing.T) {
	ns, fe, env, w := inProcessWorker(t)
	iss := workertest.NewIssuer(t, "https://idp.example.com/", "my-app")
	body, _ := json.Marshal(map[string]any{"change_id": "admin-dead", "op": "upsert", "profile": map[string]any{
		"profile_id": "p-dead", "issuer": iss.Iss, "audience": iss.Aud, "public_keys": []string{iss.PublicPEM()},
		"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}}})
	fe.stop()
	msg := &nats.Msg{Subject: "tat.profiles.commands", Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "admin-dead")
	h := newHarness(t, ns.url(), fe.uri())
	h.publishRetry(msg, 30*time.Second)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		di, err := h.tryStreamInfo(deadStream)
		if err == nil && di.State.Msgs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no dead letter after 2 minutes with the store down")
		}
		time.Sleep(200 * time.Millisecond)
	}
	fe.start()
	deadline = time.Now().Add(2 * time.Minute)
	var outcomes []string
	for len(outcomes) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no outcome for the dead-lettered profile command")
		}
		time.Sleep(200 * time.Millisecond)
		outcomes = outcomes[:0]
		for _, e := range env.Events() {
			if strings.HasPrefix(e.Type, "tat.profile.") {
				outcomes = append(outcomes, e.Type+" "+string(e.Data))
			}
		}
	}
	time.Sleep(time.Second) // a wrongly applied change would show up by now
	var all []string
	for _, e := range env.Events() {
		if strings.HasPrefix(e.Type, "tat.profile.") {
			all = append(all, e.Type+" "+string(e.Data))
		}
	}
	if len(all) != 1 || !strings.HasPrefix(all[0], "tat.profile.rejected") || !strings.Contains(all[0], "internal_server_error") {
		t.Fatalf("profile events: %v", all)
	}
	if _, ok := w.W.View().Profile("p-dead"); ok {
		t.Fatal("the dead-lettered command was applied")
	}
	dls := env.RawStreamData(deadStream)
	if len(dls) != 1 || !strings.Contains(string(dls[0]), `"msg_id":"admin-dead"`) || !strings.Contains(string(dls[0]), `"TAT_ADMIN"`) {
		t.Fatalf("dead letters: %q", dls)
	}
}

// inProcessWorker runs NATS and a store the test can stop, and one worker
// in the test process that gives up after two deliveries.
func inProcessWorker(t *testing.T) (*natsNode, *ferretNode, *workertest.Env, *workertest.Worker) {
	t.Helper()
	ns := startNATSNode(t)
	fe := startFerretNode(t)
	env := &workertest.Env{T: t, NATSURL: ns.url(), MongoURI: fe.uri(), Database: "tat", Prefix: "tat", MasterKey: make([]byte, 32)}
	_, _ = rand.Read(env.MasterKey)
	env.NC = env.Connect()
	env.JS, _ = jetstream.New(env.NC)
	w := env.StartWorker(func(c *worker.Config) {
		c.MaxDeliver = 2
		c.AckWait = 5 * time.Second
	}, nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker log:\n%s", w.Logs.String())
		}
	})
	return ns, fe, env, w
}
