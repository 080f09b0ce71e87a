package worker_test

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/natsconn"
	"github.com/tat-worker/attest/worker/workertest"
)

func natsconnLoad(env map[string]string) (natsconn.Settings, error) {
	return natsconn.Load(func(k string) string { return env[k] })
}

// shippedReplies are the reply settings compose.yaml gives the workers on
// the shipped server configuration.
func shippedReplies(c *worker.Config) {
	c.ReplyPrefixes = []string{"_INBOX_admin.", "_INBOX_app1.", "_INBOX_app2.", "_R_."}
	c.AppReplyPrefixes = map[string]string{"app1": "_INBOX_app1.", "app2": "_INBOX_app2."}
}

// Subjects every identity tries to publish on, and to subscribe to.
var (
	probePub = []string{
		"tat.attest.requests", "tat.attest.requests.app1", "tat.attest.requests.app2",
		"tat.profiles.commands", "tat.users.commands", "tat.keys.commands",
		"tat.sessions.authenticate", "tat.sessions.revoke", "tat.sessions.jwks", "tat.sessions.admin.revoke", "tat.reads.sessions",
		"tat.events.profile.created", "tat.deadletter.attest", "$KV.TAT_JWKS.k",
		"$JS.API.STREAM.INFO.TAT_ATTEST", "$JS.API.CONSUMER.CREATE.TAT_ATTEST.x", "$JS.API.STREAM.DELETE.TAT_EVENTS",
		"$JS.API.STREAM.PURGE.TAT_EVENTS", "$JS.API.STREAM.MSG.DELETE.TAT_EVENTS", "$JS.ACK.TAT_ATTEST.attest-workers.1.1.1.1.1",
		"$JS.TAT.API.STREAM.INFO.TAT_EVENTS", "$JS.TAT.API.CONSUMER.CREATE.TAT_EVENTS.x", "$JS.TAT.API.CONSUMER.CREATE.TAT_ATTEST.x",
		"_INBOX_app1.x", "_INBOX_app2.x", "_INBOX_admin.x", "_INBOX.x", "_R_.x.y", "$SRV.PING",
	}
	probeSub = []string{
		"tat.attest.requests.>", "tat.profiles.commands", "tat.events.>", "tat.sessions.>", "tat.reads.>", "$SRV.>",
		"_INBOX_app1.>", "_INBOX_app2.>", "_INBOX_admin.>", "_INBOX_auditor.>", "_INBOX.>", ">",
	}
)

// permissionTable is the README's table (subject x identity): what each
// identity may publish and subscribe to, among the probes; everything else
// is refused with a permissions violation. Applications revoke with a
// bearer proof (tat.sessions.revoke); tat.sessions.admin.revoke, by session
// id or user id, is the admin's alone.
var permissionTable = map[string]struct{ pub, sub []string }{
	"worker": {
		pub: []string{"tat.events.profile.created", "tat.deadletter.attest", "$KV.TAT_JWKS.k",
			"$JS.API.STREAM.INFO.TAT_ATTEST", "$JS.API.CONSUMER.CREATE.TAT_ATTEST.x", "$JS.ACK.TAT_ATTEST.attest-workers.1.1.1.1.1",
			"_INBOX_app1.x", "_INBOX_app2.x", "_INBOX_admin.x", "_R_.x.y"},
		sub: []string{"tat.sessions.>", "tat.reads.>", "$SRV.>", "_INBOX.>"},
	},
	"admin": {
		pub: []string{"tat.profiles.commands", "tat.users.commands", "tat.keys.commands", "tat.sessions.authenticate", "tat.sessions.revoke",
			"tat.sessions.jwks", "tat.sessions.admin.revoke", "tat.reads.sessions"},
		sub: []string{"_INBOX_admin.>"},
	},
	"app1": {
		pub: []string{"tat.attest.requests.app1", "tat.sessions.authenticate", "tat.sessions.revoke", "tat.sessions.jwks"},
		sub: []string{"_INBOX_app1.>"},
	},
	"app2": {
		pub: []string{"tat.attest.requests.app2", "tat.sessions.authenticate", "tat.sessions.revoke", "tat.sessions.jwks"},
		sub: []string{"_INBOX_app2.>"},
	},
	"auditor": {
		pub: []string{"$JS.TAT.API.STREAM.INFO.TAT_EVENTS", "$JS.TAT.API.CONSUMER.CREATE.TAT_EVENTS.x"},
		sub: []string{"_INBOX_auditor.>"},
	},
}

var violationRe = regexp.MustCompile(`Permissions Violation for (Publish|Subscription) to "([^"]+)"`)

// violations collects the subjects refused on errs until quiet.
func violations(errs <-chan error, quiet time.Duration) (pub, sub []string) {
	for {
		select {
		case err := <-errs:
			if m := violationRe.FindStringSubmatch(err.Error()); m != nil {
				if m[1] == "Publish" {
					pub = append(pub, m[2])
				} else {
					sub = append(sub, m[2])
				}
			}
		case <-time.After(quiet):
			sort.Strings(pub)
			sort.Strings(sub)
			return pub, sub
		}
	}
}

func without(all, allowed []string) []string {
	var out []string
	for _, s := range all {
		if !slices.Contains(allowed, s) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// TestShippedPermissionTable: on a server started from the shipped
// configuration, each identity may publish and subscribe to exactly what
// the permission table says; every other probe is refused with a
// permissions violation.
func TestShippedPermissionTable(t *testing.T) {
	sn := workertest.StartShippedNATS(t)
	for id, allowed := range permissionTable {
		errs := make(chan error, 1000)
		nc := sn.Connect(id, errs)
		for _, s := range probePub {
			if err := nc.Publish(s, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range probeSub {
			if _, err := nc.SubscribeSync(s); err != nil {
				t.Fatal(err)
			}
		}
		_ = nc.Flush()
		pub, sub := violations(errs, 500*time.Millisecond)
		if want := without(probePub, allowed.pub); !slices.Equal(pub, want) {
			t.Errorf("%s: publishing refused on\n  %v\nwant\n  %v", id, pub, want)
		}
		if want := without(probeSub, allowed.sub); !slices.Equal(sub, want) {
			t.Errorf("%s: subscribing refused to\n  %v\nwant\n  %v", id, sub, want)
		}
	}
	// Nobody else may even log in.
	st := sn.Settings("app1")
	st.User = "nobody"
	if _, err := st.Dial(); err == nil || !strings.Contains(err.Error(), "authorization violation") {
		t.Fatalf("an unknown user: %v", err)
	}
}

// shippedFixture is a worker on the shipped configuration with a profile
// and a user, made by the admin identity.
type shippedFixture struct {
	env, admin, app1, app2, auditor *workertest.Env
	w                               *workertest.Worker
	iss                             *workertest.Issuer
	profile                         string
}

func newShippedFixture(t *testing.T) *shippedFixture {
	t.Helper()
	env := workertest.NewShippedEnv(t)
	f := &shippedFixture{env: env, admin: env, app1: env.As("app1"), app2: env.As("app2"), auditor: env.As("auditor")}
	f.auditor.JS, _ = jetstream.NewWithAPIPrefix(f.auditor.NC, "$JS.TAT.API")
	f.w = env.StartWorker(shippedReplies, nil)
	f.iss = workertest.NewIssuer(t, "https://idp.example.com/", "my-app")
	rep := f.admin.Request(env.Subject("profiles", "commands"), "", map[string]any{
		"change_id": "c-1", "op": "upsert", "profile": map[string]any{
			"name": "IdP", "issuer": f.iss.Iss, "audience": f.iss.Aud, "public_keys": []string{f.iss.PublicPEM()},
			"attribute_mapping": map[string]any{"email": "email", "token_id": "jti"}, "can_jit_provision": true,
		}})
	mustStatus(t, rep, 200)
	f.profile = rep["profile"].(map[string]any)["profile_id"].(string)
	return f
}

func (f *shippedFixture) attestPayload(id string) map[string]any {
	return map[string]any{"request_id": id, "profile_id": f.profile, "session_duration_minutes": 60,
		"token": f.iss.Token(map[string]any{"email": "ada@example.com", "jti": id})}
}

// TestShippedFlows: what each identity is for works end to end on the
// shipped configuration: the admin applies profiles and users, each
// application attests on its own subject and calls the sessions service,
// getting its replies on its own inbox prefix, and the auditor replays the
// events, which hold no secret.
func TestShippedFlows(t *testing.T) {
	f := newShippedFixture(t)
	rep := f.admin.Request(f.env.Subject("users", "commands"), "", map[string]any{"change_id": "u-1", "op": "upsert",
		"user": map[string]any{"emails": []any{map[string]any{"email": "bob@example.com", "verified": true}}}})
	mustStatus(t, rep, 200)
	var tokens []string
	for _, app := range []*workertest.Env{f.app1, f.app2} {
		name := "app1"
		if app == f.app2 {
			name = "app2"
		}
		r := app.Request(f.env.Subject("attest", "requests", name), "flow-"+name, f.attestPayload("flow-"+name))
		mustStatus(t, r, 200)
		tokens = append(tokens, r["session_token"].(string))
		b, _ := json.Marshal(map[string]any{"session_token": r["session_token"]})
		m, err := app.NC.Request(f.env.Subject("sessions", "authenticate"), b, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: sessions service: %v", name, err)
		}
		var a map[string]any
		_ = json.Unmarshal(m.Data, &a)
		mustStatus(t, a, 200)
	}
	// The admin calls the sessions service too.
	if _, err := f.admin.NC.Request(f.env.Subject("sessions", "jwks"), []byte(`{}`), 10*time.Second); err != nil {
		t.Fatalf("admin: jwks: %v", err)
	}
	evs := f.auditor.Events()
	if len(evs) < 4 {
		t.Fatalf("the auditor read %d events", len(evs))
	}
	for _, e := range evs {
		for _, tok := range tokens {
			if strings.Contains(string(e.Data), tok) {
				t.Fatal("an event holds a session token")
			}
		}
	}
}

// TestShippedRepliesStayWithTheirApplication: an application cannot
// subscribe to another's inbox, cannot publish on another's attest
// subject, and cannot make the worker send its attest reply to another
// application's inbox (or any subject outside the allowed prefixes): the
// request is decided and audited with reply_refused, and the reply goes
// nowhere.
func TestShippedRepliesStayWithTheirApplication(t *testing.T) {
	f := newShippedFixture(t)
	errs := make(chan error, 100)
	app2 := f.env.Shipped.Connect("app2", errs)
	if _, err := app2.SubscribeSync("_INBOX_app1.>"); err != nil {
		t.Fatal(err)
	}
	_ = app2.Publish(f.env.Subject("attest", "requests", "app1"), []byte(`{}`))
	_ = app2.Flush()
	pub, sub := violations(errs, 500*time.Millisecond)
	if !slices.Equal(sub, []string{"_INBOX_app1.>"}) || !slices.Equal(pub, []string{"tat.attest.requests.app1"}) {
		t.Fatalf("app2 on app1's inbox and subject: refused pub %v sub %v", pub, sub)
	}
	// app1 listens on its inbox; the worker identity listens on its own
	// (the test's spy on where the worker might publish).
	app1Inbox, _ := f.app1.NC.SubscribeSync("_INBOX_app1.>")
	spy := f.env.Connect()
	workerInbox, _ := spy.SubscribeSync("_INBOX.>")
	_ = f.app1.NC.Flush()
	_ = spy.Flush()
	for i, reply := range []string{"_INBOX_app1.stolen", "_INBOX.worker-inbox", "_R_.x.y", "tat.events.stolen"} {
		id := "steal-" + string(rune('a'+i))
		msg := &nats.Msg{Subject: f.env.Subject("attest", "requests", "app2"), Header: nats.Header{}}
		msg.Data, _ = json.Marshal(f.attestPayload(id))
		msg.Header.Set(worker.ReplyHeader, reply)
		js, _ := jetstream.New(app2)
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		e := waitEvent(t, f.auditor, id)
		var d map[string]any
		_ = json.Unmarshal(e.Data, &d)
		if e.Type != domain.EventSessionCreated || d["reply_refused"] != true {
			t.Fatalf("app2's request with reply %s: %s %s", reply, e.Type, e.Data)
		}
	}
	for _, sub := range []*nats.Subscription{app1Inbox, workerInbox} {
		for {
			m, err := sub.NextMsg(300 * time.Millisecond)
			if err != nil {
				break
			}
			// (The spy also sees the worker's own pull deliveries, which
			// keep their stream subject: not replies.)
			if strings.Contains(string(m.Data), "steal-") && strings.Contains(string(m.Data), "status_code") {
				t.Fatalf("app2's reply reached %s", m.Subject)
			}
		}
	}
}

// waitEvent reads the events as env (the auditor) until one names id.
func waitEvent(t *testing.T, env *workertest.Env, id string) domain.Event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if evs := eventsFor(env.Events(), id); len(evs) > 0 {
			return evs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event for %s", id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestShippedAttacks: what an identity might try against the others or
// against the worker, on the shipped configuration.
func TestShippedAttacks(t *testing.T) {
	f := newShippedFixture(t)
	ctx := context.Background()
	adminStream, err := f.env.As("worker").JS.Stream(ctx, "TAT_ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	adminSeq := func() uint64 {
		info, err := adminStream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	before := adminSeq()

	t.Run("an application names an admin subject as the reply of its publish", func(t *testing.T) {
		// In one account the stream's acknowledgement would be published
		// on tat.profiles.commands and land in the admin stream; across
		// accounts it goes back to the application's own account.
		m := nats.NewMsg(f.env.Subject("attest", "requests", "app1"))
		m.Reply = f.env.Subject("profiles", "commands")
		m.Data, _ = json.Marshal(f.attestPayload("ack-injection"))
		if err := f.app1.NC.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, f.auditor, "ack-injection")
		time.Sleep(200 * time.Millisecond)
		if got := adminSeq(); got != before {
			t.Fatalf("the admin stream grew from %d to %d", before, got)
		}
	})

	t.Run("the auditor points a consumer of the events at the admin commands", func(t *testing.T) {
		n := len(f.auditor.Events())
		_, err := f.auditor.JS.CreateOrUpdatePushConsumer(ctx, "TAT_EVENTS", jetstream.ConsumerConfig{
			Name: "loop", DeliverSubject: f.env.Subject("profiles", "commands"), DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckNonePolicy})
		if err != nil {
			t.Fatal(err)
		}
		waitEchoesDropped(t, f.w, n, func() int { return len(f.auditor.Events()) })
		mustStatus(t, f.app1.Request(f.env.Subject("attest", "requests", "app1"), "after-loop", f.attestPayload("after-loop")), 200)
	})

	t.Run("the auditor reads the attest queue", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := f.auditor.JS.OrderedConsumer(short, "TAT_ATTEST", jetstream.OrderedConsumerConfig{})
		if err == nil {
			t.Fatal("the auditor made a consumer of TAT_ATTEST")
		}
	})

	t.Run("an application without a client certificate, or with a stranger's", func(t *testing.T) {
		st := f.env.Shipped.Env("app1")
		delete(st, "TAT_NATS_TLS_CERT")
		delete(st, "TAT_NATS_TLS_KEY")
		other := workertest.NewPKI(t)
		cert, key := other.Client("app1")
		for _, e := range []map[string]string{st, {"TAT_NATS_TLS_CERT": cert, "TAT_NATS_TLS_KEY": key}} {
			full := f.env.Shipped.Env("app1")
			delete(full, "TAT_NATS_TLS_CERT")
			delete(full, "TAT_NATS_TLS_KEY")
			for k, v := range e {
				full[k] = v
			}
			s, err := natsconnLoad(full)
			if err != nil {
				t.Fatal(err)
			}
			if nc, err := s.Dial(); err == nil {
				nc.Close()
				t.Fatal("connected")
			}
		}
	})

	t.Run("an application reuses another's request id", func(t *testing.T) {
		// Request ids are one space for every application: a reused id
		// with another request is refused and never sees the first
		// outcome. (An application that guesses another's ids before it
		// uses them gets those requests refused: ids should be random.)
		first := f.app2.Request(f.env.Subject("attest", "requests", "app2"), "shared-id", f.attestPayload("shared-id"))
		mustStatus(t, first, 200)
		p := f.attestPayload("shared-id")
		p["token"] = f.iss.Token(map[string]any{"email": "mallory@example.com", "jti": "mallory-1"})
		// (No Nats-Msg-Id: the stream would drop a second one within its
		// duplicate window, and nobody would answer.)
		second := f.app1.Request(f.env.Subject("attest", "requests", "app1"), "", p)
		if second["error_type"] != "invalid_request" || second["session_token"] != nil || second["session"] != nil {
			t.Fatalf("app1 reusing app2's id: %v", second)
		}
	})

	t.Run("an application sends garbage and huge payloads", func(t *testing.T) {
		errs := make(chan error, 10)
		nc := f.env.Shipped.Connect("app1", errs)
		for _, body := range [][]byte{[]byte("{"), []byte(strings.Repeat("[", 60000)), make([]byte, 1<<20+1)} {
			_ = nc.Publish(f.env.Subject("attest", "requests", "app1"), body)
		}
		_ = nc.Flush()
		mustStatus(t, f.app1.Request(f.env.Subject("attest", "requests", "app1"), "after-garbage", f.attestPayload("after-garbage")), 200)
	})
}
