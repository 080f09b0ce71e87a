package worker_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/worker/workertest"
)

// serviceCall sends one core-NATS request to a sessions-service endpoint
// and decodes the reply; err is the transport's (no reply).
func serviceCall(nc *nats.Conn, subject string, body any, timeout time.Duration) (map[string]any, error) {
	b, _ := json.Marshal(body)
	m, err := nc.Request(subject, b, timeout)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(m.Data, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// TestShippedAppCannotRevokeOthersByID: under the shipped configuration an
// application that knows another user's user_id (a JIT user's is derived
// from the email address) or session_id (in events, logs, replies) cannot
// end that user's sessions. The admin endpoint, which takes ids, is not
// the application's to call (a permissions violation, and no service
// import), and the applications' endpoint refuses ids with 400
// invalid_request naming the admin endpoint. The admin revokes by id; an
// application still revokes a session it holds the token of. Before the
// split, the application ended the victim's sessions on
// tat.sessions.revoke.
func TestShippedAppCannotRevokeOthersByID(t *testing.T) {
	f := newShippedFixture(t)
	// The victim: a session app2 started for ada (a JIT user).
	victim := f.app2.Request(f.env.Subject("attest", "requests", "app2"), "victim-1", f.attestPayload("victim-1"))
	mustStatus(t, victim, 200)
	victimToken := victim["session_token"].(string)
	sessionID := victim["session"].(map[string]any)["session_id"].(string)
	userID := victim["user"].(map[string]any)["user_id"].(string)
	stillActive := func(when string) {
		t.Helper()
		r, err := serviceCall(f.app2.NC, f.env.Subject("sessions", "authenticate"), map[string]any{"session_token": victimToken}, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: authenticate: %v", when, err)
		}
		if r["status_code"] != float64(200) {
			t.Fatalf("%s: the victim's session ended: %v", when, r)
		}
	}

	errs := make(chan error, 100)
	app1 := f.env.Shipped.Connect("app1", errs)
	adminRevoke, revoke := f.env.Subject("sessions", "admin", "revoke"), f.env.Subject("sessions", "revoke")
	for _, by := range []map[string]any{{"user_id": userID}, {"session_id": sessionID}} {
		// The admin endpoint: refused by the server, never answered.
		if r, err := serviceCall(app1, adminRevoke, by, time.Second); err == nil {
			t.Fatalf("app1 on the admin endpoint by %v: answered %v", by, r)
		}
		// The applications' endpoint: ids are refused.
		r, err := serviceCall(app1, revoke, by, 10*time.Second)
		if err != nil {
			t.Fatalf("app1 revoke by %v: %v", by, err)
		}
		mustError(t, r, 400, "invalid_request")
		if msg, _ := r["error_message"].(string); !strings.Contains(msg, "sessions.admin.revoke") {
			t.Errorf("the refusal does not point to the admin endpoint: %q", msg)
		}
		if r["session"] != nil || r["revoked_session_ids"] != nil {
			t.Fatalf("a refused revoke carries %v", r)
		}
	}
	_ = app1.Flush()
	if pub, _ := violations(errs, 500*time.Millisecond); !slices.Equal(pub, []string{adminRevoke, adminRevoke}) {
		t.Errorf("app1's publishes refused: %v, want the admin endpoint twice", pub)
	}
	stillActive("after app1's tries")
	for _, e := range f.auditor.Events() {
		if e.Type == domain.EventSessionRevoked {
			t.Fatalf("app1's tries revoked a session: %s", e.Data)
		}
	}

	// An application revokes a session with its bearer proof.
	own := f.app1.Request(f.env.Subject("attest", "requests", "app1"), "own-1", f.attestPayload("own-1"))
	mustStatus(t, own, 200)
	r, err := serviceCall(f.app1.NC, revoke, map[string]any{"session_token": own["session_token"]}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, r, 200)
	stillActive("after app1 revoked its own session")

	// The admin revokes by session id, then by user id.
	r, err = serviceCall(f.admin.NC, adminRevoke, map[string]any{"session_id": sessionID}, 10*time.Second)
	if err != nil {
		t.Fatalf("admin revoke by session_id: %v", err)
	}
	mustStatus(t, r, 200)
	if s, _ := r["session"].(map[string]any); s["session_id"] != sessionID {
		t.Fatalf("admin revoke by session_id: %v", r)
	}
	r, err = serviceCall(f.app2.NC, f.env.Subject("sessions", "authenticate"), map[string]any{"session_token": victimToken}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mustError(t, r, 404, "session_not_found")
	again := f.app2.Request(f.env.Subject("attest", "requests", "app2"), "victim-2", f.attestPayload("victim-2"))
	mustStatus(t, again, 200)
	r, err = serviceCall(f.admin.NC, adminRevoke, map[string]any{"user_id": userID}, 10*time.Second)
	if err != nil {
		t.Fatalf("admin revoke by user_id: %v", err)
	}
	mustStatus(t, r, 200)
	if ids, _ := r["revoked_session_ids"].([]any); len(ids) != 1 || ids[0] != again["session"].(map[string]any)["session_id"] {
		t.Fatalf("admin revoke by user_id: %v", r)
	}
}

// TestShippedAdminRevokeNeedsTheImport: the account layer holds on its
// own. On the shipped configuration edited so that app1's user may publish
// on all of tat.sessions.>, a request on tat.sessions.admin.revoke still
// reaches nobody: APP1 imports no such service (and the worker's account
// exports it to ADMIN only). The admin's request reaches the service.
func TestShippedAdminRevokeNeedsTheImport(t *testing.T) {
	sn := workertest.StartEditedShippedNATS(t, func(accounts string) string {
		return strings.Replace(accounts, `publish: {allow: ["tat.attest.requests.app1", `,
			`publish: {allow: ["tat.sessions.>", "tat.attest.requests.app1", `, 1)
	})
	// A stand-in for the service, in the worker's account.
	svc := sn.Connect("worker", nil)
	sub, err := svc.Subscribe("tat.sessions.admin.revoke", func(m *nats.Msg) { _ = m.Respond([]byte(`{"status_code":200}`)) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = svc.Flush()

	errs := make(chan error, 10)
	app1 := sn.Connect("app1", errs)
	_, err = app1.Request("tat.sessions.admin.revoke", []byte(`{"user_id":"user-ada"}`), 2*time.Second)
	if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("app1, allowed to publish, on the admin endpoint: %v, want no responders", err)
	}
	if pub, _ := violations(errs, 300*time.Millisecond); len(pub) != 0 {
		t.Fatalf("the edit did not let app1 publish: %v", pub)
	}
	if n, _ := sub.Delivered(); n != 0 {
		t.Fatalf("app1's request reached the service %d times", n)
	}
	if _, err := sn.Connect("admin", nil).Request("tat.sessions.admin.revoke", []byte(`{"user_id":"user-ada"}`), 5*time.Second); err != nil {
		t.Fatalf("the admin's request: %v", err)
	}
}
