package domain_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

func TestNewEvent(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 2, 5, 4, 5, 999999999, time.FixedZone("EET", 2*3600))
	data := map[string]any{"request_id": "r-1", "status_code": 200}
	e, err := domain.NewEvent("evt-1", domain.EventSessionCreated, "session-1", at, data)
	if err != nil {
		t.Fatalf("NewEvent: %v", err)
	}
	want := domain.Event{
		SpecVersion: "1.0", ID: "evt-1", Source: "tat/worker", Type: "tat.session.created",
		Subject: "session-1", Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		DataContentType: "application/json", Data: json.RawMessage(`{"request_id":"r-1","status_code":200}`),
	}
	if e.SpecVersion != want.SpecVersion || e.ID != want.ID || e.Source != want.Source || e.Type != want.Type ||
		e.Subject != want.Subject || e.Time != want.Time || e.DataContentType != want.DataContentType || string(e.Data) != string(want.Data) {
		t.Errorf("NewEvent = %+v\nwant %+v", e, want)
	}

	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"specversion":"1.0","id":"evt-1","source":"tat/worker","type":"tat.session.created",` +
		`"subject":"session-1","time":"2030-01-02T03:04:05Z","datacontenttype":"application/json",` +
		`"data":{"request_id":"r-1","status_code":200}}`
	if string(b) != wantJSON {
		t.Errorf("event JSON = %s\nwant %s", b, wantJSON)
	}
}

func TestNewEventWithoutSubjectOrData(t *testing.T) {
	t.Parallel()
	e, err := domain.NewEvent("evt-2", domain.EventJWKSRefreshed, "", testNow, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"subject"`) || !strings.Contains(string(b), `"data":null`) {
		t.Errorf("event JSON = %s, want no subject and null data", b)
	}
}

func TestNewEventRefusesUnencodableData(t *testing.T) {
	t.Parallel()
	if _, err := domain.NewEvent("evt-3", domain.EventAttestFailed, "", testNow, map[string]any{"c": make(chan int)}); err == nil {
		t.Errorf("NewEvent accepted data JSON cannot encode")
	}
}

// TestNewEventCarriesNoSecret: a Secret in event data is written as
// REDACTED, whatever the caller put there.
func TestNewEventCarriesNoSecret(t *testing.T) {
	t.Parallel()
	e, err := domain.NewEvent("evt-4", domain.EventAttestFailed, "", testNow, domain.AttestRequest{ProfileID: "p-1", Token: domain.NewSecret(secretToken)})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(e.Data), secretToken) {
		t.Errorf("event data carries the token: %s", e.Data)
	}
}

func TestEventSubjectSuffix(t *testing.T) {
	t.Parallel()
	for typ, want := range map[string]string{
		domain.EventSessionCreated:    "session.created",
		domain.EventSessionUpdated:    "session.updated",
		domain.EventSessionRevoked:    "session.revoked",
		domain.EventAttestVerified:    "attest.verified",
		domain.EventAttestFailed:      "attest.failed",
		domain.EventProfileCreated:    "profile.created",
		domain.EventProfileUpdated:    "profile.updated",
		domain.EventProfileDeleted:    "profile.deleted",
		domain.EventProfileRejected:   "profile.rejected",
		domain.EventUserCreated:       "user.created",
		domain.EventUserUpdated:       "user.updated",
		domain.EventUserDeleted:       "user.deleted",
		domain.EventUserRejected:      "user.rejected",
		domain.EventJWKSRefreshed:     "jwks.refreshed",
		domain.EventJWKSRefreshFailed: "jwks.refresh_failed",
		"other.thing":                 "other.thing",
	} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			if got := (domain.Event{Type: typ}).SubjectSuffix(); got != want {
				t.Errorf("SubjectSuffix of %q = %q, want %q", typ, got, want)
			}
		})
	}
}

func TestEventID(t *testing.T) {
	t.Parallel()
	id := domain.EventID("attest", "r-1")
	if !strings.HasPrefix(id, "evt-") || !uuidV8.MatchString(strings.TrimPrefix(id, "evt-")) {
		t.Errorf("EventID = %q, want evt-<uuid v8>", id)
	}
	if !domain.ValidCommandID(id) {
		t.Errorf("EventID %q cannot serve as a Nats-Msg-Id of the contract's form", id)
	}
	if again := domain.EventID("attest", "r-1"); again != id {
		t.Errorf("EventID is not stable: %q, then %q", id, again)
	}
	if want := "evt-9aaebcab-c3d0-8e92-8f8a-bbc202fc52c5"; id != want {
		t.Errorf("EventID(attest, r-1) = %q, want %q", id, want)
	}
	seen := map[string]string{id: "attest/r-1"}
	for _, c := range [][2]string{{"profile", "r-1"}, {"user", "r-1"}, {"attest", "r-2"}, {"attestr", "-1"}, {"", "attestr-1"}} {
		got := domain.EventID(c[0], c[1])
		if prev, dup := seen[got]; dup {
			t.Errorf("EventID(%q, %q) = the id of %s", c[0], c[1], prev)
		}
		seen[got] = c[0] + "/" + c[1]
	}
	if domain.EventID("attest", "r-1") == domain.DerivedUUID("attest", "r-1") {
		t.Errorf("EventID shares its derivation with DerivedUUID of the same parts")
	}
}
