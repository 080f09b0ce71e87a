package client_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/client"
	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestWireTypesMatchTheWorker keeps the client's own wire types in step
// with the JSON the worker writes: each worker value, with every member
// set, decodes into the client type with no member unknown to it, and the
// client's JSON decodes back into the worker type unchanged. (Tests may
// import the worker; the package does not.)
func TestWireTypesMatchTheWorker(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 25, 21, 52, 56, 0, time.UTC)
	session := domain.Session{
		SessionID: "session-1", UserID: "user-1", StartedAt: at, LastAccessedAt: at, ExpiresAt: at.Add(time.Hour),
		Roles: []string{"admin"}, CustomClaims: map[string]any{"plan": "pro", "n": 1.5},
		AuthenticationFactors: []domain.AuthenticationFactor{{
			Type: domain.FactorTrustedAuthToken, DeliveryMethod: domain.DeliveryTrustedExchange,
			CreatedAt: at, UpdatedAt: at, LastAuthenticatedAt: at,
			TrustedAuthTokenFactor: &domain.TrustedAuthTokenFactor{TokenID: "jti-1", ProfileID: "p-1"},
		}},
	}
	user := domain.User{UserSpec: domain.UserSpec{
		UserID: "user-1", Emails: []domain.UserEmail{{Email: "ada@example.com", Verified: true}},
		Name:   domain.UserName{FirstName: "Ada", MiddleName: "K", LastName: "Lovelace"},
		Status: domain.UserActive, ExternalID: "ext", TrustedMetadata: json.RawMessage(`{"d":"x"}`),
	}, Version: 2, CreatedAt: at, UpdatedAt: at}
	profile := domain.Profile{ProfileSpec: domain.ProfileSpec{
		ProfileID: "p-1", Name: "IdP", Issuer: "https://idp/", Audience: "app", JWKSURL: "https://idp/jwks",
		PublicKeys:       []string{"-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n"},
		AttributeMapping: domain.AttributeMapping{Email: "email", TokenID: "jti", ExternalUserID: "sub", RoleIDs: "roles"},
		CanJITProvision:  true, MaxTokenLifetimeSeconds: 3600,
	}, Version: 3, CreatedAt: at, UpdatedAt: at}

	cases := []struct {
		name   string
		worker any // a value the worker writes
		client any // a pointer to the client type that reads it
		// back is what the client's JSON reads back as, when not worker:
		// secrets come back REDACTED.
		back any
	}{
		{"session", session, &client.Session{}, nil},
		{"user", user, &client.User{}, nil},
		{"profile", profile, &client.Profile{}, nil},
		{"profile command reply", handlers.ProfileEventData{ChangeID: "c-1", StatusCode: 200, Profile: &profile}, &client.ProfileResult{}, nil},
		{"profile rejected", handlers.ProfileEventData{ChangeID: "c-1", ProfileID: "p-1", StatusCode: 409, ErrorType: "version_conflict", ErrorMessage: "m"}, &client.ProfileRejectedData{}, nil},
		{"user command reply", handlers.UserEventData{ChangeID: "u-1", StatusCode: 200, User: &user}, &client.UserResult{}, nil},
		{"user rejected", handlers.UserEventData{ChangeID: "u-1", UserID: "user-1", StatusCode: 400, ErrorType: "invalid_user", ErrorMessage: "m"}, &client.UserRejectedData{}, nil},
		{"attest reply", handlers.AttestReply{StatusCode: 200, RequestID: "r-1", UserID: "user-1", User: &user, Session: &session, SessionToken: "tat_st_x", SessionJWT: "a.b.c"}, &client.AttestResult{},
			handlers.AttestReply{StatusCode: 200, RequestID: "r-1", UserID: "user-1", User: &user, Session: &session, SessionToken: "REDACTED", SessionJWT: "REDACTED"}},
		{"session event", handlers.AttestEventData{RequestID: "r-1", ProfileID: "p-1", UserID: "user-1", TokenID: "jti", TokenSHA256: "ab", Session: &session, SessionRevision: 1}, &client.SessionEventData{}, nil},
		{"attest verified", handlers.AttestEventData{RequestID: "r-1", ProfileID: "p-1", UserID: "user-1", TokenID: "jti", TokenSHA256: "ab"}, &client.AttestVerifiedData{}, nil},
		{"attest failed", handlers.AttestEventData{RequestID: "r-1", ProfileID: "p-1", TokenSHA256: "ab", StatusCode: 401, ErrorType: "jwt_expired", ErrorMessage: "m"}, &client.AttestFailedData{}, nil},
		{"session revoked", handlers.SessionRevokedData{SessionID: "session-1", UserID: "user-1", Session: &session, SessionRevision: 3}, &client.SessionRevokedData{}, nil},
		{"authenticate reply", handlers.SessionReply{StatusCode: 200, Session: &session, User: &user, SessionToken: "tat_st_x", SessionJWT: "a.b.c"}, &client.AuthenticateResult{},
			handlers.SessionReply{StatusCode: 200, Session: &session, User: &user, SessionToken: "REDACTED", SessionJWT: "REDACTED"}},
		{"revoke reply", handlers.SessionReply{StatusCode: 200, Session: &session}, &client.RevokeResult{}, nil},
		{"jwks", domain.JWKSet{Keys: []domain.JWK{{Kty: "EC", Crv: "P-256", X: "x", Y: "y", Kid: "tat-1", Alg: "ES256", Use: "sig"}}}, &client.JWKS{}, nil},
		{"event", mustEvent(t, at), &client.Event{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, err := json.Marshal(tc.worker)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tc.client); err != nil {
				t.Fatalf("the client cannot read %s: %v", raw, err)
			}
			back, err := json.Marshal(tc.client)
			if err != nil {
				t.Fatal(err)
			}
			again := reflect.New(reflect.TypeOf(tc.worker))
			if err := json.Unmarshal(back, again.Interface()); err != nil {
				t.Fatalf("the worker cannot read the client's %s: %v", back, err)
			}
			want := tc.worker
			if tc.back != nil {
				want = tc.back
			}
			if _, ok := want.(domain.Event); ok {
				// An event made by NewEvent carries its own encoding, which a
				// decoded one does not: compare with the worker's event as
				// read back from its JSON.
				var plain domain.Event
				if err := json.Unmarshal(raw, &plain); err != nil {
					t.Fatal(err)
				}
				want = plain
			}
			if got := again.Elem().Interface(); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the value:\nworker %s\nclient %s", raw, back)
			}
		})
	}
}

func mustEvent(t *testing.T, at time.Time) domain.Event {
	ev, err := domain.NewEvent("evt-1", domain.EventSessionRevoked, "session-1", at, map[string]any{"session_id": "session-1"})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestEventTypesMatchTheWorker: the client names every event type the
// worker's domain/event.go declares, and no other (both files parsed).
func TestEventTypesMatchTheWorker(t *testing.T) {
	t.Parallel()
	worker, mine := eventTypes(t, "../domain/event.go"), eventTypes(t, "events.go")
	if len(worker) < 15 {
		t.Fatalf("found %d event types in domain/event.go; the parser is out of step", len(worker))
	}
	for typ, name := range worker {
		if _, ok := mine[typ]; !ok {
			t.Errorf("the worker publishes %s (domain.%s): add it to the client, with its data type", typ, name)
		}
	}
	for typ := range mine {
		if _, ok := worker[typ]; !ok {
			t.Errorf("the client names %s, which the worker does not publish", typ)
		}
	}
}

// eventTypes returns the string constants named Event... whose value
// starts with "tat." in file: value -> name.
func eventTypes(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(gotoken.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if i >= len(vs.Values) || !strings.HasPrefix(name.Name, "Event") {
				continue
			}
			if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
				if v, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(v, "tat.") {
					out[v] = name.Name
				}
			}
		}
		return true
	})
	return out
}
