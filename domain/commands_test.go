package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tat-worker/attest/domain"
)

func intPtr(n int) *int       { return &n }
func int64Ptr(n int64) *int64 { return &n }

// validAttest is an attest request Validate accepts; cases edit a copy.
func validAttest() domain.AttestRequest {
	return domain.AttestRequest{
		RequestID: "r-1",
		ProfileID: "trusted-auth-token-profile-1",
		Token:     domain.NewSecret(secretToken),
	}
}

func TestAttestRequestValidate(t *testing.T) {
	t.Parallel()
	claims := func(raw string) func(r *domain.AttestRequest) {
		return func(r *domain.AttestRequest) { r.SessionCustomClaims = json.RawMessage(raw) }
	}
	for _, tc := range []struct {
		name       string
		edit       func(r *domain.AttestRequest)
		wantErr    error
		wantClaims map[string]any
	}{
		{name: "minimal request", edit: func(*domain.AttestRequest) {}},
		{name: "missing profile_id", edit: func(r *domain.AttestRequest) { r.ProfileID = "" }, wantErr: domain.ErrInvalidRequest},
		{name: "profile_id of 128 characters", edit: func(r *domain.AttestRequest) { r.ProfileID = strings.Repeat("p", 128) }},
		{name: "profile_id of 129 characters", edit: func(r *domain.AttestRequest) { r.ProfileID = strings.Repeat("p", 129) }, wantErr: domain.ErrInvalidRequest},
		{name: "missing token", edit: func(r *domain.AttestRequest) { r.Token = domain.Secret{} }, wantErr: domain.ErrInvalidRequest},
		{name: "session_token alone", edit: func(r *domain.AttestRequest) { r.SessionToken = domain.NewSecret("tat_st_x") }},
		{name: "session_jwt alone", edit: func(r *domain.AttestRequest) { r.SessionJWT = domain.NewSecret("eyJ.x.y") }},
		{
			name: "both session_token and session_jwt",
			edit: func(r *domain.AttestRequest) {
				r.SessionToken = domain.NewSecret("tat_st_x")
				r.SessionJWT = domain.NewSecret("eyJ.x.y")
			},
			wantErr: domain.ErrTooManySessionArguments,
		},
		{name: "duration 0", edit: func(r *domain.AttestRequest) { r.SessionDurationMinutes = intPtr(0) }, wantErr: domain.ErrInvalidSessionDuration},
		{name: "duration negative", edit: func(r *domain.AttestRequest) { r.SessionDurationMinutes = intPtr(-60) }, wantErr: domain.ErrInvalidSessionDuration},
		{name: "duration 4", edit: func(r *domain.AttestRequest) { r.SessionDurationMinutes = intPtr(4) }, wantErr: domain.ErrInvalidSessionDuration},
		{name: "duration 5", edit: func(r *domain.AttestRequest) { r.SessionDurationMinutes = intPtr(5) }},
		{name: "duration 527040", edit: func(r *domain.AttestRequest) { r.SessionDurationMinutes = intPtr(527040) }},
		{name: "duration 527041", edit: func(r *domain.AttestRequest) { r.SessionDurationMinutes = intPtr(527041) }, wantErr: domain.ErrInvalidSessionDuration},
		{name: "custom claims", edit: claims(`{"plan":"pro","n":1}`), wantClaims: map[string]any{"plan": "pro", "n": json.Number("1")}},
		{name: "custom claims null", edit: claims(`null`)},
		{name: "custom claims empty object", edit: claims(`{}`), wantClaims: map[string]any{}},
		{name: "custom claim set to null is kept for deletion", edit: claims(`{"plan":null}`), wantClaims: map[string]any{"plan": nil}},
		{name: "reserved names nested deeper are allowed", edit: claims(`{"ext":{"iss":"x"}}`), wantClaims: map[string]any{"ext": map[string]any{"iss": "x"}}},
		{name: "custom claims array", edit: claims(`[{"plan":"pro"}]`), wantErr: domain.ErrInvalidRequest},
		{name: "custom claims string", edit: claims(`"plan"`), wantErr: domain.ErrInvalidRequest},
		{name: "custom claims number", edit: claims(`7`), wantErr: domain.ErrInvalidRequest},
		{name: "custom claims of exactly 4 KiB", edit: claims(claimsOfSize(domain.MaxCustomClaimsBytes)), wantClaims: map[string]any{"k": strings.Repeat("x", domain.MaxCustomClaimsBytes-8)}},
		{name: "custom claims over 4 KiB", edit: claims(claimsOfSize(domain.MaxCustomClaimsBytes + 1)), wantErr: domain.ErrCustomClaimsTooLarge},
		{
			name: "custom claims over 4 KiB only because of whitespace",
			edit: claims(strings.Replace(claimsOfSize(domain.MaxCustomClaimsBytes), ":", strings.Repeat(" ", 100)+":", 1)),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := validAttest()
			tc.edit(&r)
			got, err := r.Validate()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Validate = %v, want %v", err, tc.wantErr)
				}
				if got != nil {
					t.Errorf("Validate returned claims %v with an error", got)
				}
				if strings.Contains(err.Error(), secretToken) {
					t.Errorf("the error carries the token")
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.wantClaims != nil && !reflect.DeepEqual(got, tc.wantClaims) {
				t.Errorf("claims = %#v, want %#v", got, tc.wantClaims)
			}
		})
	}
}

// claimsOfSize returns a custom claims object {"k":"xxx..."} of exactly n
// bytes of compact JSON.
func claimsOfSize(n int) string {
	const frame = len(`{"k":""}`)
	return `{"k":"` + strings.Repeat("x", n-frame) + `"}`
}

func TestAttestRequestValidateRefusesEveryReservedClaim(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "tat_session"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := validAttest()
			r.SessionCustomClaims = json.RawMessage(`{"plan":"pro","` + name + `":"x"}`)
			_, err := r.Validate()
			if !errors.Is(err, domain.ErrReservedClaims) {
				t.Fatalf("Validate = %v, want reserved_claims_in_custom_claims", err)
			}
			if domain.AsError(err).Status != 400 {
				t.Errorf("Status = %d, want 400", domain.AsError(err).Status)
			}
		})
	}
	t.Run("names differing in case are reserved too", func(t *testing.T) {
		t.Parallel()
		r := validAttest()
		r.SessionCustomClaims = json.RawMessage(`{"ISS":"x","Sub":"y"}`)
		if _, err := r.Validate(); !errors.Is(err, domain.ErrReservedClaims) {
			t.Fatalf("Validate = %v, want reserved_claims_in_custom_claims", err)
		}
	})
}

func TestProfileCommandValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cmd     domain.ProfileCommand
		wantErr error
	}{
		{name: "upsert with a profile", cmd: domain.ProfileCommand{ChangeID: "c-1", Op: domain.OpUpsert, Profile: &domain.ProfileSpec{}}},
		{name: "upsert without a profile", cmd: domain.ProfileCommand{Op: domain.OpUpsert}, wantErr: domain.ErrProfileInvalid},
		{name: "delete with a profile_id", cmd: domain.ProfileCommand{Op: domain.OpDelete, ProfileID: "trusted-auth-token-profile-1"}},
		{name: "delete without a profile_id", cmd: domain.ProfileCommand{Op: domain.OpDelete}, wantErr: domain.ErrProfileInvalid},
		{name: "missing op", cmd: domain.ProfileCommand{Profile: &domain.ProfileSpec{}}, wantErr: domain.ErrInvalidRequest},
		{name: "unknown op", cmd: domain.ProfileCommand{Op: "create", Profile: &domain.ProfileSpec{}}, wantErr: domain.ErrInvalidRequest},
		{name: "op in another case", cmd: domain.ProfileCommand{Op: "UPSERT", Profile: &domain.ProfileSpec{}}, wantErr: domain.ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cmd.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestUserCommandValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cmd     domain.UserCommand
		wantErr error
	}{
		{name: "upsert with a user", cmd: domain.UserCommand{ChangeID: "u-1", Op: domain.OpUpsert, User: &domain.UserSpec{}}},
		{name: "upsert without a user", cmd: domain.UserCommand{Op: domain.OpUpsert}, wantErr: domain.ErrInvalidUser},
		{name: "delete with a user_id", cmd: domain.UserCommand{Op: domain.OpDelete, UserID: "user-1"}},
		{name: "delete without a user_id", cmd: domain.UserCommand{Op: domain.OpDelete}, wantErr: domain.ErrInvalidUser},
		{name: "missing op", cmd: domain.UserCommand{User: &domain.UserSpec{}}, wantErr: domain.ErrInvalidRequest},
		{name: "unknown op", cmd: domain.UserCommand{Op: "remove", UserID: "user-1"}, wantErr: domain.ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cmd.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestCheckVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		expected *int64
		stored   int64
		wantErr  bool
	}{
		{name: "no expected_version, nothing stored", expected: nil, stored: 0},
		{name: "no expected_version, something stored", expected: nil, stored: 7},
		{name: "expected 0 for a new record", expected: int64Ptr(0), stored: 0},
		{name: "expected 0 but one is stored", expected: int64Ptr(0), stored: 1, wantErr: true},
		{name: "expected matches", expected: int64Ptr(3), stored: 3},
		{name: "expected behind", expected: int64Ptr(2), stored: 3, wantErr: true},
		{name: "expected ahead", expected: int64Ptr(4), stored: 3, wantErr: true},
		{name: "expected for a record that is gone", expected: int64Ptr(1), stored: 0, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := domain.CheckVersion(tc.expected, tc.stored)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("CheckVersion: %v", err)
				}
				return
			}
			if !errors.Is(err, domain.ErrVersionConflict) {
				t.Fatalf("CheckVersion = %v, want version_conflict", err)
			}
			if domain.AsError(err).Status != 409 {
				t.Errorf("Status = %d, want 409", domain.AsError(err).Status)
			}
		})
	}
}
