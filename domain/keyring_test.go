package domain_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tat-worker/attest/domain"
)

const keySkew = 60 * time.Second

// TestKeyStateBoundaries: each boundary belongs to the later state:
// exactly at sign_from a key signs, exactly at sign_until it only
// verifies, exactly at retire_at it is retired.
func TestKeyStateBoundaries(t *testing.T) {
	t.Parallel()
	s := testNow
	u := s.Add(30 * 24 * time.Hour)
	r := u.Add(domain.SessionJWTLifetime + keySkew)
	kt := domain.KeyTimes{PublishAt: s.Add(-6 * time.Minute), SignFrom: s, SignUntil: u, RetireAt: r}
	for _, tc := range []struct {
		at   time.Time
		want domain.KeyState
	}{
		{kt.PublishAt, domain.KeyNext},
		{s.Add(-time.Nanosecond), domain.KeyNext},
		{s, domain.KeySigning},
		{u.Add(-time.Nanosecond), domain.KeySigning},
		{u, domain.KeyVerifying},
		{r.Add(-time.Nanosecond), domain.KeyVerifying},
		{r, domain.KeyRetired},
		{r.Add(time.Hour), domain.KeyRetired},
	} {
		if got := kt.StateAt(tc.at); got != tc.want {
			t.Errorf("state at %s = %s, want %s", tc.at.Format(time.RFC3339Nano), got, tc.want)
		}
	}
	// The fleet's first key (no times) and the newest (no end).
	if got := (domain.KeyTimes{}).StateAt(testNow); got != domain.KeySigning {
		t.Errorf("a key without times is %s, want signing", got)
	}
	if got := (domain.KeyTimes{SignFrom: s}).StateAt(s.Add(1000 * time.Hour)); got != domain.KeySigning {
		t.Errorf("the newest key is %s long after sign_from, want signing", got)
	}
}

// records returns key 1 and the records of rotations made at each of at,
// planned as the worker plans them.
func records(t *testing.T, at ...time.Time) []domain.KeyRecord {
	t.Helper()
	recs := []domain.KeyRecord{{Number: 1, KID: "k1", CreatedAt: testNow.Add(-40 * 24 * time.Hour)}}
	for i, a := range at {
		next, err := domain.PlanRotation(recs[len(recs)-1], a, keySkew)
		if err != nil {
			t.Fatalf("rotation %d at %s: %v", i+2, a, err)
		}
		next.KID = "k" + string(rune('0'+next.Number))
		recs = append(recs, next)
	}
	return recs
}

func TestPlanRotation(t *testing.T) {
	t.Parallel()
	at := testNow.Add(300 * time.Millisecond) // times are whole seconds
	recs := records(t, at)
	next := recs[1]
	wantSign := testNow.Add(domain.KeyPublishWindow + keySkew)
	if next.Number != 2 || !next.PublishAt.Equal(testNow) || !next.SignFrom.Equal(wantSign) ||
		!next.RetirePrevious.Equal(wantSign.Add(domain.SessionJWTLifetime+keySkew)) {
		t.Fatalf("planned %+v", next)
	}
	// While key 2 is in its publish window, no rotation: not even one
	// second before it signs.
	for _, when := range []time.Time{testNow, testNow.Add(time.Minute), wantSign.Add(-time.Second), wantSign.Add(-time.Nanosecond)} {
		if _, err := domain.PlanRotation(next, when, keySkew); !errors.Is(err, domain.ErrKeyRotationInProgress) {
			t.Errorf("rotation at %s, in key 2's publish window: %v, want key_rotation_in_progress", when, err)
		}
	}
	// Exactly at sign_from it may rotate again.
	third, err := domain.PlanRotation(next, wantSign, keySkew)
	if err != nil || third.Number != 3 || !third.SignFrom.Equal(wantSign.Add(domain.KeyPublishWindow+keySkew)) {
		t.Fatalf("rotation at key 2's sign_from: %+v, %v", third, err)
	}
	if domain.ErrKeyRotationInProgress.Status != 409 || domain.ErrKeyRotationInProgress.Code != "key_rotation_in_progress" {
		t.Errorf("sentinel %+v", domain.ErrKeyRotationInProgress)
	}
}

func TestKeyTimesOf(t *testing.T) {
	t.Parallel()
	recs := records(t, testNow, testNow.Add(24*time.Hour))
	// Any order in, number order out.
	times := domain.KeyTimesOf([]domain.KeyRecord{recs[2], recs[0], recs[1]})
	want := []domain.KeyTimes{
		{SignUntil: recs[1].SignFrom, RetireAt: recs[1].RetirePrevious},
		{PublishAt: recs[1].PublishAt, SignFrom: recs[1].SignFrom, SignUntil: recs[2].SignFrom, RetireAt: recs[2].RetirePrevious},
		{PublishAt: recs[2].PublishAt, SignFrom: recs[2].SignFrom},
	}
	for i := range want {
		if times[i] != want[i] {
			t.Errorf("key %d: %+v, want %+v", i+1, times[i], want[i])
		}
	}
}

// TestRotationNeverFailsAJWT walks a rotation second by second: at every
// instant exactly one key signs, and a JWT signed at any instant by the
// key signing then, on a worker whose clock is off by up to half the skew,
// is accepted (its key published) by every worker whose clock is off by up
// to half the skew, the other way included, until the JWT expires. After
// that its key retires, and then it is refused.
func TestRotationNeverFailsAJWT(t *testing.T) {
	t.Parallel()
	recs := records(t, testNow)
	times := domain.KeyTimesOf(recs)
	half := keySkew / 2
	start, end := testNow.Add(-time.Minute), recs[1].RetirePrevious.Add(2*time.Minute)
	for real := start; real.Before(end); real = real.Add(time.Second) {
		signing := 0
		for _, kt := range times {
			if kt.StateAt(real) == domain.KeySigning {
				signing++
			}
		}
		if signing != 1 {
			t.Fatalf("%d keys sign at %s", signing, real)
		}
		for _, signerOff := range []time.Duration{-half, 0, half} {
			k := -1
			for i, kt := range times {
				if kt.StateAt(real.Add(signerOff)) == domain.KeySigning {
					k = i
				}
			}
			// The JWT's exp, by the signer's clock, is its iat plus the
			// lifetime: in real time, real + lifetime.
			for life := time.Duration(0); life <= domain.SessionJWTLifetime; life += 10 * time.Second {
				for _, verifierOff := range []time.Duration{-half, 0, half} {
					if st := times[k].StateAt(real.Add(life).Add(verifierOff)); st == domain.KeyRetired {
						t.Fatalf("a JWT of key %d signed at %s (signer clock %+v) is refused %s later by a verifier clock %+v",
							k+1, real, signerOff, life, verifierOff)
					}
				}
			}
		}
	}
	// Retired: key 1 from retire_previous_at of key 2.
	if st := times[0].StateAt(recs[1].RetirePrevious); st != domain.KeyRetired {
		t.Errorf("key 1 at key 2's retire_previous_at is %s", st)
	}
}

// TestIssuerAcrossRotation: the issuer signs with the key in its signing
// window, publishes and accepts every key that is not retired, and refuses
// a retired key's JWT, at the exact boundaries.
func TestIssuerAcrossRotation(t *testing.T) {
	t.Parallel()
	recs := records(t, testNow)
	times := domain.KeyTimesOf(recs)
	k1, k2 := newSigningKey(t, "k1"), newSigningKey(t, "k2")
	k1.Number, k1.KeyTimes = 1, times[0]
	k2.Number, k2.KeyTimes = 2, times[1]
	is := &domain.Issuer{TokenKey: tokenKey(1), Ring: staticRing{k1, k2}, Iss: sessionIss, Aud: sessionAud}
	signFrom, retire := recs[1].SignFrom, recs[1].RetirePrevious

	kidOf := func(at time.Time) string {
		t.Helper()
		jwt, err := is.MintJWT(testSession(), at)
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			Kid string `json:"kid"`
		}
		raw, _ := domain.DecodeBase64URL(strings.Split(jwt.Reveal(), ".")[0])
		_ = json.Unmarshal(raw, &h)
		return h.Kid
	}
	jwks := func(at time.Time) string {
		var kids []string
		for _, k := range is.PublicJWKS(at).Keys {
			kids = append(kids, k.Kid)
		}
		return strings.Join(kids, ",")
	}
	for _, tc := range []struct {
		name string
		at   time.Time
		kid  string
		jwks string
	}{
		{"before the rotation", testNow.Add(-time.Second), "k1", "k1,k2"}, // a worker that knows key 2 publishes it
		{"in the publish window", signFrom.Add(-time.Second), "k1", "k1,k2"},
		{"exactly at sign_from", signFrom, "k2", "k1,k2"},
		{"just before retire_at", retire.Add(-time.Second), "k2", "k1,k2"},
		{"exactly at retire_at", retire, "k2", "k2"},
	} {
		if got := kidOf(tc.at); got != tc.kid {
			t.Errorf("%s: signed with %s, want %s", tc.name, got, tc.kid)
		}
		if got := jwks(tc.at); got != tc.jwks {
			t.Errorf("%s: JWKS %s, want %s", tc.name, got, tc.jwks)
		}
	}
	// Key 1's last JWT, signed a second before the switch, is accepted
	// until retire_at and refused from it; key 2's first JWT, from the
	// start of the publish window.
	last, _ := is.MintJWT(testSession(), signFrom.Add(-time.Second))
	if _, err := is.ParseJWT(last.Reveal(), retire.Add(-time.Second)); err != nil {
		t.Errorf("key 1's JWT a second before retire_at: %v", err)
	}
	if _, err := is.ParseJWT(last.Reveal(), retire); !errors.Is(err, domain.ErrSessionNotFound) {
		t.Errorf("key 1's JWT at retire_at: %v, want session_not_found", err)
	}
	first, _ := is.MintJWT(testSession(), signFrom)
	if _, err := is.ParseJWT(first.Reveal(), recs[1].PublishAt); err != nil {
		t.Errorf("key 2's JWT checked by a worker at publish_at: %v", err)
	}
}

type staticRing []domain.SigningKey

func (r staticRing) SessionKeys() []domain.SigningKey { return r }

func TestRotationDue(t *testing.T) {
	t.Parallel()
	created := testNow
	first := domain.KeyRecord{Number: 1, KID: "k1", CreatedAt: created}
	month := 30 * 24 * time.Hour
	for _, tc := range []struct {
		latest   domain.KeyRecord
		interval time.Duration
		at       time.Time
		want     bool
	}{
		{first, month, created.Add(month - time.Second), false},
		{first, month, created.Add(month), true},
		{first, 0, created.Add(100 * month), false},
		{domain.KeyRecord{Number: 2, SignFrom: created.Add(month)}, month, created.Add(month + time.Hour), false},
		{domain.KeyRecord{Number: 2, SignFrom: created.Add(month)}, month, created.Add(2 * month), true},
	} {
		if got := domain.RotationDue(tc.latest, tc.interval, tc.at); got != tc.want {
			t.Errorf("due(%+v, %s, %s) = %v", tc.latest, tc.interval, tc.at, got)
		}
	}
}

func TestKeyInfos(t *testing.T) {
	t.Parallel()
	recs := records(t, testNow)
	infos := domain.KeyInfos(recs, testNow.Add(time.Minute))
	if len(infos) != 2 || infos[0].State != domain.KeySigning || infos[1].State != domain.KeyNext ||
		!infos[0].SignUntil.Equal(recs[1].SignFrom) || !infos[0].RetireAt.Equal(recs[1].RetirePrevious) {
		t.Fatalf("infos %+v", infos)
	}
	b, _ := json.Marshal(infos[0])
	if string(b) != `{"kid":"k1","number":1,"state":"signing","sign_until":"`+recs[1].SignFrom.Format(time.RFC3339)+
		`","retire_at":"`+recs[1].RetirePrevious.Format(time.RFC3339)+`"}` {
		t.Errorf("key 1 as JSON: %s", b)
	}
	if st := domain.KeyInfos(recs, time.Time{}); st[0].State != "" {
		t.Errorf("no instant, yet a state: %+v", st[0])
	}
	// Records in any order come out in Number order, with the same times.
	reversed := []domain.KeyRecord{recs[1], recs[0]}
	if got := domain.KeyInfos(reversed, testNow.Add(time.Minute)); len(got) != 2 || got[0] != infos[0] || got[1] != infos[1] {
		t.Errorf("KeyInfos of records in reverse order = %+v, want %+v", got, infos)
	}
}

func TestKeysCommandValidate(t *testing.T) {
	t.Parallel()
	if err := (domain.KeysCommand{Op: "rotate"}).Validate(); err != nil {
		t.Errorf("rotate: %v", err)
	}
	for _, op := range []string{"", "Rotate", "delete", "upsert"} {
		if err := (domain.KeysCommand{Op: op}).Validate(); !errors.Is(err, domain.ErrInvalidRequest) {
			t.Errorf("op %q: %v", op, err)
		}
	}
}
