package worker_test

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker"
	"github.com/tat-worker/attest/worker/workertest"
)

// signBus is the signature workers put on what they share on the bus, as
// the contract states it: "v1=" and the base64url HMAC-SHA256, under the
// key HKDF-SHA256(TAT_MASTER_KEY, no salt, label), of each part prefixed
// with its length as 8 bytes big-endian. Events: label "tat event signing
// v1", parts the subject and the event's bytes. Shared JWK sets: label "tat
// shared jwks signing v1", parts the bucket, the key and the entry's bytes.
func signBus(t *testing.T, master []byte, label string, parts ...[]byte) string {
	t.Helper()
	key, err := hkdf.Key(sha256.New, master, nil, label, 32)
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, key)
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return "v1=" + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// metric reads one sample of the worker's /metrics (0 when absent).
func metric(t *testing.T, w *workertest.Worker, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + w.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// publishEvent publishes an event as an attacker with the right to publish
// on the events subjects would, with sig as its Tat-Signature ("" for
// none), and waits until the worker's view has passed it.
func publishEvent(t *testing.T, f *fixture, subject string, body []byte, sig string) {
	t.Helper()
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, "forged-"+randomID())
	if sig != "" {
		m.Header.Set(worker.SignatureHeader, sig)
	}
	ack, err := f.env.JS.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.w.W.View().WaitSeq(ctx, ack.Sequence); err != nil {
		t.Fatal(err)
	}
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// TestForgedEventsChangeNoView: the worker applies only events a worker
// of its fleet signed. A test connection that may publish on tat.events.>
// (the shipped permissions give that to the worker alone) forges a
// profile for its own issuer, unsigned, signed with another key, and with
// a genuine signature moved to another subject: an attest with its token
// stays trusted_token_profile_not_found. Signed with the fleet's key (which
// the attacker does not have) the same event is applied: the forgery was
// well formed. A forged session.updated that adds a role changes nothing.
func TestForgedEventsChangeNoView(t *testing.T) {
	f := newFixture(t)
	evil := workertest.NewIssuer(t, "https://evil.example.com/", "my-app")
	const profileID = "trusted-auth-token-profile-00000000-0000-4000-8000-00000000e411"
	now := time.Now().UTC().Truncate(time.Second)
	ev, err := domain.NewEvent("evt-forged-"+randomID(), domain.EventProfileCreated, profileID, now, map[string]any{
		"change_id": "evil", "status_code": 200, "profile": map[string]any{
			"profile_id": profileID, "name": "evil", "issuer": evil.Iss, "audience": evil.Aud,
			"public_keys": []string{evil.PublicPEM()}, "attribute_mapping": map[string]any{"email": "email", "token_id": "jti"},
			"can_jit_provision": true, "version": 1, "created_at": now, "updated_at": now,
		}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(ev)
	subject := f.env.Subject("events", "profile", "created")
	attestEvil := func() map[string]any {
		id := randomID()
		return f.env.Request(f.env.Subject("attest", "requests"), id, map[string]any{"request_id": id, "profile_id": profileID,
			"token": evil.Token(map[string]any{"email": "ada@example.com", "jti": id}), "session_duration_minutes": 60})
	}
	otherMaster := make([]byte, 32)
	_, _ = rand.Read(otherMaster)
	// A genuine signature: that of the fixture's own profile.created event.
	stream, err := f.env.JS.Stream(context.Background(), "TAT_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	genuine := raw.Header.Get(worker.SignatureHeader)
	if genuine == "" {
		t.Fatal("the worker's own event is not signed")
	}

	before := metric(t, f.w, `tat_events_refused_total{reason="unsigned"}`)
	for _, tc := range []struct {
		name, sig, reason string
		body              []byte
	}{
		{"unsigned", "", "unsigned", body},
		{"signed with another master key", signBus(t, otherMaster, "tat event signing v1", []byte(subject), body), "bad_signature", body},
		{"signed for the JWK sets", signBus(t, f.env.MasterKey, "tat shared jwks signing v1", []byte(subject), body), "bad_signature", body},
		{"a genuine signature on other bytes", genuine, "bad_signature", body},
		{"a genuine event's bytes and signature on another subject", genuine, "bad_signature", raw.Data},
		{"not a signature", "v1=!!!", "bad_signature", body},
	} {
		was := metric(t, f.w, `tat_events_refused_total{reason="`+tc.reason+`"}`)
		s := subject
		if tc.name == "a genuine event's bytes and signature on another subject" {
			s = f.env.Subject("events", "profile", "updated")
		}
		publishEvent(t, f, s, tc.body, tc.sig)
		if _, ok := f.w.W.View().Profile(profileID); ok {
			t.Fatalf("%s: the forged profile is in the view", tc.name)
		}
		if rep := attestEvil(); rep["error_type"] != "trusted_token_profile_not_found" {
			t.Fatalf("%s: attest with the attacker's token: %v", tc.name, rep)
		}
		if got := metric(t, f.w, `tat_events_refused_total{reason="`+tc.reason+`"}`); got != was+1 {
			t.Errorf("%s: tat_events_refused_total{reason=%q} went from %v to %v", tc.name, tc.reason, was, got)
		}
	}
	if metric(t, f.w, `tat_events_refused_total{reason="unsigned"}`) <= before {
		t.Error("no unsigned refusal counted")
	}
	if !strings.Contains(f.w.Logs.String(), "event refused") {
		t.Error("no warning logged")
	}

	// A forged session.updated (a newer revision with a role) on a real
	// session changes nothing either.
	start := f.attest("forge-session", map[string]any{"session_duration_minutes": 60})
	mustStatus(t, start, 200)
	sess := start["session"].(map[string]any)
	sess["roles"] = []string{"superadmin"}
	sev, _ := domain.NewEvent("evt-forged-"+randomID(), domain.EventSessionUpdated, sess["session_id"].(string), now,
		map[string]any{"request_id": "forged", "user_id": f.user, "session": sess, "session_revision": 99})
	sbody, _ := json.Marshal(sev)
	publishEvent(t, f, f.env.Subject("events", "session", "updated"), sbody, "")
	b, _ := json.Marshal(map[string]any{"session_token": start["session_token"]})
	m, err := f.env.NC.Request(f.env.Subject("sessions", "authenticate"), b, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(m.Data), "superadmin") {
		t.Fatalf("the forged role reached the session: %s", m.Data)
	}

	// Control: the same profile event signed with the fleet's key is
	// applied, so what was refused above was well formed.
	publishEvent(t, f, subject, body, signBus(t, f.env.MasterKey, "tat event signing v1", []byte(subject), body))
	if _, ok := f.w.W.View().Profile(profileID); !ok {
		t.Fatal("a correctly signed event was not applied")
	}
	mustStatus(t, attestEvil(), 200)
}

// TestEventDeliveredIntoACommandStreamIsDropped: a consumer of the events
// stream whose deliver subject is a command subject (the auditor of the
// shipped model may create consumers) would feed every event back as a
// command, each deciding into a new event delivered back in turn. Events
// carry a worker's signature header; a command that carries one is
// dropped, with no outcome, so nothing loops.
func TestEventDeliveredIntoACommandStreamIsDropped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	before := len(f.env.Events())
	for _, deliver := range []string{f.env.Subject("profiles", "commands"), f.env.Subject("attest", "requests", "app1")} {
		_, err := f.env.JS.CreateOrUpdatePushConsumer(ctx, "TAT_EVENTS", jetstream.ConsumerConfig{
			Name: "echo-" + randomID(), DeliverSubject: deliver, DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckNonePolicy})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Into the admin stream every event arrives (the server does not bind a
	// push consumer to tat.attest.requests.app1, which has no subscriber of
	// its own; should it, those are dropped the same way).
	waitEchoesDropped(t, f.w, before, func() int { return len(f.env.Events()) })
	dead := f.env.RawStreamData("TAT_DEADLETTER")
	if len(dead) < before || !strings.Contains(string(dead[0]), "delivered into a command stream") {
		t.Fatalf("%d dead letters for %d dropped events: %q", len(dead), before, dead)
	}
	mustStatus(t, f.attest("after-echo", nil), 200)
}

// TestForgedSharedJWKSIsRefused: every worker trusts the JWK sets of the
// TAT_JWKS bucket, so a value there must be a worker's. A connection that
// may write the bucket (the shipped permissions give that to the worker
// alone) plants the attacker's keys for a profile's jwks_url before the
// profile exists: unsigned (as an earlier version wrote them), signed with
// another key, and signed by the fleet for another URL. Each is refused
// and counted, the worker fetches the issuer's set and writes a signed
// entry over it: the attacker's token is refused, the issuer's accepted.
// Control: the fleet's own signature is adopted without a fetch.
func TestForgedSharedJWKSIsRefused(t *testing.T) {
	env := workertest.NewEnv(t)
	w := env.StartWorker(jwksConfig, nil)
	k1 := workertest.NewIssuer(t, "https://idp.example.com/", "my-app")
	k1.KID = "k1"
	evil := workertest.NewIssuer(t, k1.Iss, k1.Aud)
	evil.KID = "evil"
	srv := newJWKSServer(t, k1)
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, "TAT_JWKS")
	if err != nil {
		t.Fatal(err)
	}
	keyOf := func(url string) string {
		sum := sha256.Sum256([]byte(url))
		return fmt.Sprintf("%x", sum)
	}
	evilSet, _ := json.Marshal(map[string]any{"keys": []any{evil.JWK()}})
	entry, _ := json.Marshal(map[string]any{"raw": evilSet, "fetched_at": time.Now().UTC(), "max_age": int64(time.Hour)})
	envelope := func(sig string) []byte {
		b, _ := json.Marshal(map[string]any{"entry": json.RawMessage(entry), "sig": sig})
		return b
	}
	otherMaster := make([]byte, 32)
	_, _ = rand.Read(otherMaster)
	for _, tc := range []struct {
		name, reason string
		value        func(url string) []byte
	}{
		{"unsigned, as an earlier version wrote it", "unsigned", func(string) []byte { return entry }},
		{"an envelope without a signature", "unsigned", func(string) []byte { return envelope("") }},
		{"signed with another master key", "bad_signature", func(url string) []byte {
			return envelope(signBus(t, otherMaster, "tat shared jwks signing v1", []byte("TAT_JWKS"), []byte(keyOf(url)), entry))
		}},
		{"signed by the fleet for another URL", "bad_signature", func(string) []byte {
			return envelope(signBus(t, env.MasterKey, "tat shared jwks signing v1", []byte("TAT_JWKS"), []byte(keyOf("https://other/")), entry))
		}},
		{"signed as an event", "bad_signature", func(url string) []byte {
			return envelope(signBus(t, env.MasterKey, "tat event signing v1", []byte("TAT_JWKS"), []byte(keyOf(url)), entry))
		}},
		{"not JSON", "malformed", func(string) []byte { return []byte("{\"entry\":") }},
		{"a member twice", "malformed", func(string) []byte { return []byte(`{"entry":{},"entry":{},"sig":"v1="}`) }},
	} {
		url := srv.URL + "/" + randomID()
		if _, err := kv.Put(ctx, keyOf(url), tc.value(url)); err != nil {
			t.Fatal(err)
		}
		was := metric(t, w, `tat_jwks_shared_refused_total{reason="`+tc.reason+`"}`)
		fetches := srv.fetches.Load()
		profile := createJWKSProfile(t, env, url)
		if rep := attestWith(t, env, profile, evil); rep["status_code"] == float64(200) {
			t.Fatalf("%s: the attacker's token was accepted: %v", tc.name, rep)
		}
		mustStatus(t, attestWith(t, env, profile, k1), 200)
		if got := metric(t, w, `tat_jwks_shared_refused_total{reason="`+tc.reason+`"}`); got <= was {
			t.Errorf("%s: tat_jwks_shared_refused_total{reason=%q} stayed %v", tc.name, tc.reason, got)
		}
		if srv.fetches.Load() == fetches {
			t.Errorf("%s: the issuer's set was not fetched", tc.name)
		}
		e, err := kv.Get(ctx, keyOf(url))
		if err != nil || strings.Contains(string(e.Value()), base64.StdEncoding.EncodeToString(evilSet)) || !strings.Contains(string(e.Value()), `"sig":"v1=`) {
			t.Errorf("%s: the bucket still holds the forgery, or an unsigned entry: %s", tc.name, e.Value())
		}
	}
	// Control: signed by the fleet for this URL, the same set is used as
	// it stands (so the forgeries above were well formed).
	url := srv.URL + "/" + randomID()
	if _, err := kv.Put(ctx, keyOf(url), envelope(signBus(t, env.MasterKey, "tat shared jwks signing v1", []byte("TAT_JWKS"), []byte(keyOf(url)), entry))); err != nil {
		t.Fatal(err)
	}
	profile := createJWKSProfile(t, env, url)
	mustStatus(t, attestWith(t, env, profile, evil), 200)
}

// TestEventsBeforeTheStartAreNotRead: after an upgrade, the events stream
// holds unsigned events of the earlier version. A worker loads its view
// from the store at start and applies only the events stored after that:
// the old events are neither applied nor refused (what they recorded is
// in the store), and the worker serves.
func TestEventsBeforeTheStartAreNotRead(t *testing.T) {
	f := newFixture(t)
	if err := f.w.Stop(); err != nil {
		t.Fatal(err)
	}
	ev, _ := domain.NewEvent("evt-old-"+randomID(), domain.EventProfileDeleted, f.profile, time.Now(), map[string]any{
		"change_id": "old", "status_code": 200, "profile": map[string]any{"profile_id": f.profile, "version": 99}})
	body, _ := json.Marshal(ev)
	if _, err := f.env.JS.Publish(context.Background(), f.env.Subject("events", "profile", "deleted"), body); err != nil {
		t.Fatal(err)
	}
	f.w = f.env.StartWorker(nil, nil)
	mustStatus(t, f.attest("after-upgrade", nil), 200)
	for _, reason := range []string{"unsigned", "bad_signature", "malformed"} {
		if n := metric(t, f.w, `tat_events_refused_total{reason="`+reason+`"}`); n != 0 {
			t.Errorf("%v events refused as %s: the worker read events from before its start", n, reason)
		}
	}
}

// waitEchoesDropped waits until the worker has dropped the n events the
// stream held when a consumer began delivering them into a command stream,
// then checks that they made no event: events (the stream's count) is
// still n.
func waitEchoesDropped(t *testing.T, w *workertest.Worker, n int, events func() int) {
	t.Helper()
	dropped := func() float64 { return metric(t, w, `tat_events_refused_total{reason="delivered_as_command"}`) }
	deadline := time.Now().Add(10 * time.Second)
	for dropped() < float64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d echoed events dropped", dropped(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if after := events(); after != n {
		t.Fatalf("the echoed events made %d new events", after-n)
	}
}

// TestViewMappedBytesMetric: /metrics reports the memory the view holds
// outside the Go heap, as the view counts it, and it grows as users come.
func TestViewMappedBytesMetric(t *testing.T) {
	env := workertest.NewEnv(t)
	w := env.StartWorker(nil, nil)
	before := metric(t, w, "tat_view_mapped_bytes")
	if want := float64(w.W.View().OffHeapBytes()); before != want {
		t.Fatalf("tat_view_mapped_bytes %v, the view counts %v", before, want)
	}
	now := time.Now()
	for i := range 2000 {
		u, err := domain.NewJITUser(fmt.Sprintf("user%d@example.com", i), "", now)
		if err != nil {
			t.Fatal(err)
		}
		w.W.View().PutUser(u, false)
	}
	after := metric(t, w, "tat_view_mapped_bytes")
	if want := float64(w.W.View().OffHeapBytes()); after != want || after <= before {
		t.Fatalf("after 2,000 users tat_view_mapped_bytes is %v (before %v), the view counts %v", after, before, want)
	}
}
