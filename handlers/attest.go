package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tat-worker/attest/domain"
)

// AttestReply is the reply to an attest request (contract section 5). The
// stored copy has SessionToken and SessionJWT empty: they are derived again
// (token) or minted afresh (JWT) whenever the reply is sent.
type AttestReply struct {
	StatusCode   int             `json:"status_code"`
	RequestID    string          `json:"request_id"`
	UserID       string          `json:"user_id,omitempty"`
	User         *domain.User    `json:"user,omitempty"`
	Session      *domain.Session `json:"session,omitempty"`
	SessionToken string          `json:"session_token,omitempty"`
	SessionJWT   string          `json:"session_jwt,omitempty"`
	ErrorType    string          `json:"error_type,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
}

// Attest exchanges a trusted token for a session (or a verified user). It
// reads profiles, users, sessions and keys from memory only; its writes are
// inserts under unique keys (replay claim, session revision, outcome).
type Attest struct {
	View          *View
	Barrier       Barrier
	Keys          KeySource
	Replays       ReplayStore
	Sessions      SessionStore
	Users         UserStore
	Pub           Publisher
	Done          *Completer
	Issuer        *domain.Issuer
	Now           func() time.Time
	Skew          time.Duration
	MaxTokenBytes int
	// Revisions reads back the session revisions an earlier delivery
	// stored, for Abandon (nil: a request given up cannot announce them).
	Revisions RevisionReader
}

// attestation is what a successful attest produced.
type attestation struct {
	profile domain.Profile
	token   *domain.VerifiedToken
	user    domain.User
	session *domain.SessionState
	created bool
}

// Handle runs one attest request to its one outcome. A returned error is
// transient: the worker retries the message; every other result, including
// every refusal, comes back as an Output whose event has been published.
func (a *Attest) Handle(ctx context.Context, in Input) (Output, error) {
	ctx = withReplyRefused(withPosition(ctx, in), in)
	var req domain.AttestRequest
	derr := domain.DecodeStrict(in.Data, &req)
	id := commandID(req.RequestID, in)
	if derr == nil && req.RequestID != "" && req.RequestID != id {
		derr = domain.ErrInvalidRequest.With("request_id must be 1 to 128 characters of A-Za-z0-9._:-")
	}
	key := "attest:" + id
	fp := fingerprint(req, in.Data, derr)
	if in.Redelivered {
		if o, ok, err := a.Done.Outcomes.Get(ctx, key); err != nil {
			return Output{}, fmt.Errorf("look up outcome %s: %w", key, err)
		} else if ok {
			return a.send(ctx, o, fp, true, false)
		}
		// A user made just in time by an earlier delivery but not announced
		// (the view may hold it from the store after a restart, and then
		// this delivery would not provision it again).
		if p, ok := a.View.Profile(req.ProfileID); derr == nil && ok && p.CanJITProvision {
			if err := a.resumeJIT(ctx, id); err != nil {
				return Output{}, err
			}
		}
	}
	if derr != nil {
		return a.fail(ctx, id, fp, req, derr)
	}
	now := a.Now().UTC()
	checkAt := judgedAt(in, now)
	res, stored, err := a.attest(ctx, id, req, now, checkAt)
	switch {
	case stored != nil:
		return a.send(ctx, *stored, fp, true, false)
	case err != nil && Permanent(err):
		return a.fail(ctx, id, fp, req, err)
	case err != nil:
		return Output{}, err
	}
	return a.succeed(ctx, id, fp, req, res, now)
}

// judgedAt is the one instant at which a request's token times and its
// replay claim are judged: now on a first delivery; on a redelivery, when
// the stream stored the request (so a retry decides as the first attempt
// did), but never earlier than domain.RedeliveryLookback before now, which
// keeps every claim that was live then still stored (domain.ReplayClaimGrace).
func judgedAt(in Input, now time.Time) time.Time {
	if !in.Redelivered || in.PublishedAt.IsZero() || !in.PublishedAt.Before(now) {
		return now
	}
	if earliest := now.Add(-domain.RedeliveryLookback); in.PublishedAt.Before(earliest) {
		return earliest
	}
	return in.PublishedAt.UTC()
}

// fingerprint identifies what a request asked: its profile, token, session
// arguments, duration and claims (or its raw bytes when it did not decode).
// A repeat of the request has the same one; another request reusing the
// request_id has another.
func fingerprint(req domain.AttestRequest, data []byte, derr error) string {
	h := sha256.New()
	if derr != nil {
		h.Write([]byte("raw\x00"))
		h.Write(data)
		return hex.EncodeToString(h.Sum(nil))
	}
	dur := ""
	if req.SessionDurationMinutes != nil {
		dur = fmt.Sprint(*req.SessionDurationMinutes)
	}
	var claims bytes.Buffer
	_ = json.Compact(&claims, req.SessionCustomClaims)
	for _, part := range []string{req.ProfileID, req.Token.Reveal(), req.SessionToken.Reveal(), req.SessionJWT.Reveal(), dur, claims.String()} {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Abandon ends a request that exhausted its deliveries: its one outcome is
// attest.failed with internal_server_error, unless it already has one, or
// an earlier delivery stored a session (then it is that session's
// session.created or session.updated: see leftovers). A user made just in
// time by an earlier delivery is announced either way.
func (a *Attest) Abandon(ctx context.Context, in Input, cause error) (Output, error) {
	ctx = withReplyRefused(withPosition(ctx, in), in)
	var req domain.AttestRequest
	derr := domain.DecodeStrict(in.Data, &req)
	id := commandID(req.RequestID, in)
	fp := fingerprint(req, in.Data, derr)
	if o, ok, err := a.Done.Outcomes.Get(ctx, "attest:"+id); err != nil {
		return Output{}, err
	} else if ok {
		return a.send(ctx, o, fp, true, false)
	}
	if derr == nil && (req.RequestID == "" || req.RequestID == id) {
		if out, done, err := a.leftovers(ctx, id, fp, req, judgedAt(in, a.Now().UTC())); err != nil || done {
			return out, err
		}
	}
	return a.fail(ctx, id, fp, req, domain.ErrInternal.Wrap(cause, "the request could not be completed"))
}

func (a *Attest) attest(ctx context.Context, id string, req domain.AttestRequest, now, checkAt time.Time) (*attestation, *Outcome, error) {
	claims, err := req.Validate()
	if err != nil {
		return nil, nil, err
	}
	profile, ok := a.View.Profile(req.ProfileID)
	if !ok {
		// Created a moment ago through another worker? Catch up once.
		if err := a.Barrier.CatchUp(ctx); err != nil {
			return nil, nil, err
		}
		if profile, ok = a.View.Profile(req.ProfileID); !ok {
			return nil, nil, domain.ErrProfileNotFound.With("no trusted token profile %q", req.ProfileID)
		}
	}
	vt, err := a.verify(ctx, profile, req.Token.Reveal(), checkAt)
	if err != nil {
		return nil, nil, err
	}
	minutes := 0
	if req.SessionDurationMinutes != nil {
		minutes = *req.SessionDurationMinutes
	}
	var existing *domain.SessionState
	if !req.SessionToken.Empty() || !req.SessionJWT.Empty() {
		st, err := a.findSession(ctx, req, now)
		if err != nil {
			return nil, nil, err
		}
		existing = &st
	}
	user, err := a.findUser(ctx, id, profile, vt, now)
	if err != nil {
		return nil, nil, err
	}
	if existing != nil && existing.Session.UserID != user.UserID {
		return nil, nil, domain.ErrUserIDMismatch.With("the session belongs to another user than the token's")
	}
	// The replay claim is the commit point for the token: every refusal
	// that does not depend on it has been made above.
	// Judged at checkAt, like the token's times: a claim live then is a
	// replay even if it has expired since.
	holder, inserted, err := a.Replays.Claim(ctx, profile.ProfileID, vt.TokenID, id, vt.ExpiresAt.Add(a.Skew), checkAt)
	if err != nil {
		return nil, nil, fmt.Errorf("claim token id: %w", err)
	}
	if !inserted {
		// Only a conflict reaches the store here: a repeated request
		// answers with its first outcome, another request is a replay.
		o, ok, err := a.Done.Outcomes.Get(ctx, "attest:"+id)
		switch {
		case err != nil:
			return nil, nil, fmt.Errorf("look up outcome: %w", err)
		case ok:
			return nil, &o, nil
		case holder != id:
			return nil, nil, domain.ErrTokenReplayed.With("token id already used for this profile")
		}
	}
	res := &attestation{profile: profile, token: vt, user: user}
	ev := domain.FactorEvidence{ProfileID: profile.ProfileID, TokenID: vt.TokenID}
	if profile.AttributeMapping.RoleIDs != "" && vt.RoleIDs != nil {
		ev.Roles = vt.RoleIDs
	}
	switch {
	case existing != nil:
		st, err := a.attach(ctx, id, req, *existing, ev, claims, now, minutes)
		if err != nil {
			return nil, nil, err
		}
		res.session = &st
	case minutes > 0:
		st, err := a.start(ctx, id, req, user, ev, claims, now, minutes)
		if err != nil {
			return nil, nil, err
		}
		res.session, res.created = &st, true
	}
	return res, nil, nil
}

// verify runs the checklist; an unknown kid on a JWKS profile, after the
// cheap unverified issuer check, may cause one rate-limited refetch.
func (a *Attest) verify(ctx context.Context, p domain.Profile, raw string, now time.Time) (*domain.VerifiedToken, error) {
	policy := p.Policy(a.Skew, a.MaxTokenBytes)
	pt, err := domain.PrecheckToken(raw, a.MaxTokenBytes)
	if err != nil {
		return nil, err
	}
	if !p.UsesJWKS() {
		return pt.Verify(policy, p.StaticKeys(), now)
	}
	// The cheap checks come before a token may cause a fetch.
	if pt.UnverifiedIssuer() != p.Issuer {
		return nil, domain.ErrInvalidIssuer.With("the token's issuer does not match the profile")
	}
	keys, err := a.Keys.Keys(ctx, p.JWKSURL)
	if err != nil {
		return nil, err
	}
	vt, err := pt.Verify(policy, keys, now)
	if errors.Is(err, domain.ErrUnknownKID) {
		keys, rerr := a.Keys.RefreshUnknownKID(ctx, p.JWKSURL)
		if len(keys) > 0 {
			vt, err = pt.Verify(policy, keys, now)
		}
		if rerr != nil && errors.Is(err, domain.ErrUnknownKID) {
			// The issuer may have rotated, but its JWKS could not be
			// fetched to confirm: "could not check", not "bad token".
			return nil, domain.ErrJWKSUnavailable.Wrap(rerr, "the token's kid is unknown and the issuer's JWKS could not be fetched")
		}
	}
	return vt, err
}

func (a *Attest) findSession(ctx context.Context, req domain.AttestRequest, now time.Time) (domain.SessionState, error) {
	lookup := func() (domain.SessionState, bool, error) {
		if !req.SessionToken.Empty() {
			st, ok := a.View.SessionByToken(req.SessionToken.Reveal())
			return st, ok, nil
		}
		c, err := a.Issuer.ParseJWT(req.SessionJWT.Reveal(), now)
		if err != nil {
			return domain.SessionState{}, false, err
		}
		st, ok := a.View.Session(c.SessionID)
		return st, ok, nil
	}
	st, ok, err := lookup()
	if err != nil {
		return st, err
	}
	if !ok {
		// Made a moment ago by another worker? Catch up once.
		if err := a.Barrier.CatchUp(ctx); err != nil {
			return st, err
		}
		if st, ok, err = lookup(); err != nil {
			return st, err
		}
	}
	if !ok || !st.Active(now) {
		return st, domain.ErrSessionNotFound.With("no active session matches")
	}
	return st, nil
}

func (a *Attest) findUser(ctx context.Context, id string, p domain.Profile, vt *domain.VerifiedToken, now time.Time) (domain.User, error) {
	email, err := domain.NormalizeEmail(vt.Email)
	if err != nil {
		return domain.User{}, domain.ErrInvalidClaims.With("the token's email is not a valid address")
	}
	u, ok := a.View.UserByEmail(email)
	if !ok {
		if err := a.Barrier.CatchUp(ctx); err != nil {
			return domain.User{}, err
		}
		u, ok = a.View.UserByEmail(email)
	}
	if !ok {
		if !p.CanJITProvision {
			return domain.User{}, domain.ErrUserNotFound.With("no user has the token's email")
		}
		if u, err = a.provision(ctx, id, email, vt, now); err != nil {
			return domain.User{}, err
		}
	}
	if !u.Active() {
		return domain.User{}, domain.ErrUserNotFound.With("the user is not active")
	}
	return u, nil
}

// provision creates the user for a JIT profile. The user id is fixed by
// the address, so workers racing on one address make one user: the email
// claim insert decides, and the loser uses the winner's record. Its
// user.created is recorded under the request (an outbox) before the user is
// written, so a retry, or Abandon, announces a user an earlier delivery
// wrote.
func (a *Attest) provision(ctx context.Context, id, email string, vt *domain.VerifiedToken, now time.Time) (domain.User, error) {
	u, err := domain.NewJITUser(vt.Email, vt.ExternalUserID, now)
	if err != nil {
		return domain.User{}, err
	}
	owner, _, err := a.Users.ClaimEmail(ctx, email, u.UserID)
	if err != nil {
		return domain.User{}, fmt.Errorf("claim email: %w", err)
	}
	if owner != u.UserID {
		// Another user holds the address; the view has not seen it yet.
		if err := a.Barrier.CatchUp(ctx); err != nil {
			return domain.User{}, err
		}
		if got, ok := a.View.UserByEmail(email); ok {
			return got, nil
		}
		return domain.User{}, fmt.Errorf("email held by user %s not yet visible", owner)
	}
	if got, ok := a.View.User(u.UserID); ok {
		return got, nil
	}
	if version, _, _ := a.View.UserVersion(u.UserID); version > 0 {
		// This address's JIT user was deleted: it comes back as a newer
		// version of the same record (racing workers write the same one).
		u.Version = version + 1
	}
	e, err := domain.NewEvent(domain.EventID("jit-user", fmt.Sprintf("%s#%d", u.UserID, u.Version)), domain.EventUserCreated, u.UserID, now, UserEventData{User: &u})
	if err != nil {
		return domain.User{}, err
	}
	// A retry of this request finds its first attempt's record, and
	// writes and announces that one.
	rec, _, err := a.Done.Outcomes.Record(ctx, Outcome{Key: jitKey(id), StatusCode: 200, Event: e, CreatedAt: now})
	if err != nil {
		return domain.User{}, fmt.Errorf("record user.created: %w", err)
	}
	if u, err = a.announceJIT(ctx, rec); err != nil {
		return domain.User{}, err
	}
	if version, _, live := a.View.UserVersion(u.UserID); version > u.Version {
		// Changed (or deleted) by an admin since an earlier delivery made it.
		if !live {
			return domain.User{}, domain.ErrUserNotFound.With("the user is not active")
		}
		u, _ = a.View.User(u.UserID)
	}
	return u, nil
}

func (a *Attest) start(ctx context.Context, id string, req domain.AttestRequest, user domain.User, ev domain.FactorEvidence, claims map[string]any, now time.Time, minutes int) (domain.SessionState, error) {
	// Fixed by the request id and the token: a retry finds its own session,
	// a later request reusing the id gets another one.
	sid := startedSessionID(id, req.Token.Reveal())
	s := domain.NewSession(sid, user.UserID, ev, claims, now, minutes)
	if err := domain.CheckClaimsSize(s.CustomClaims); err != nil {
		return domain.SessionState{}, err
	}
	st := domain.SessionState{Session: s, Revision: 1}
	stored, by, err := a.Sessions.InsertRevision(ctx, st, id)
	switch {
	case errors.Is(err, ErrConflict) && by == id:
		st = stored // an earlier attempt of this request made it
	case err != nil:
		return domain.SessionState{}, fmt.Errorf("insert session: %w", err)
	}
	a.View.PutSession(st)
	return st, nil
}

// attach adds the factor to an existing session. Concurrent changes to one
// session meet on the unique (session, revision) key; the loser catches up
// and tries again on the newer revision.
func (a *Attest) attach(ctx context.Context, id string, req domain.AttestRequest, cur domain.SessionState, ev domain.FactorEvidence, claims map[string]any, now time.Time, minutes int) (domain.SessionState, error) {
	for range 5 {
		next := domain.AttachFactor(cur.Session, ev, claims, now, minutes)
		if err := domain.CheckClaimsSize(next.CustomClaims); err != nil {
			return domain.SessionState{}, err
		}
		st := domain.SessionState{Session: next, Revision: cur.Revision + 1}
		stored, by, err := a.Sessions.InsertRevision(ctx, st, id)
		switch {
		case err == nil:
			a.View.PutSession(st)
			return st, nil
		case !errors.Is(err, ErrConflict):
			return domain.SessionState{}, fmt.Errorf("insert session revision: %w", err)
		case by == id:
			a.View.PutSession(stored)
			return stored, nil
		}
		a.View.PutSession(stored)
		if err := a.Barrier.CatchUp(ctx); err != nil {
			return domain.SessionState{}, err
		}
		latest, ok := a.View.Session(cur.Session.SessionID)
		if !ok || !latest.Active(now) {
			return domain.SessionState{}, domain.ErrSessionNotFound.With("the session ended")
		}
		cur = latest
		if cur.Revision < stored.Revision {
			cur = stored
		}
	}
	return domain.SessionState{}, errors.New("session changed too often concurrently; retrying")
}

func (a *Attest) succeed(ctx context.Context, id, fp string, req domain.AttestRequest, res *attestation, now time.Time) (Output, error) {
	data := AttestEventData{
		RequestID: id, ProfileID: res.profile.ProfileID, UserID: res.user.UserID,
		TokenID: res.token.TokenID, TokenSHA256: tokenSHA256(req.Token.Reveal()),
	}
	reply := AttestReply{StatusCode: 200, RequestID: id, UserID: res.user.UserID, User: &res.user}
	o := Outcome{Key: "attest:" + id, Fingerprint: fp, StatusCode: 200, CreatedAt: now}
	typ, subject := domain.EventAttestVerified, res.user.UserID
	if res.session != nil {
		s := res.session.Session
		data.Session, data.SessionRevision, reply.Session = &s, res.session.Revision, &s
		typ, subject, o.SessionID = domain.EventSessionUpdated, s.SessionID, s.SessionID
		o.SecretsUntil = res.token.ExpiresAt.Add(a.Skew)
		if res.created {
			typ = domain.EventSessionCreated
		}
	}
	return a.complete(ctx, o, typ, subject, data, reply)
}

func (a *Attest) fail(ctx context.Context, id, fp string, req domain.AttestRequest, cause error) (Output, error) {
	e := domain.AsError(cause)
	data := AttestEventData{RequestID: id, ProfileID: req.ProfileID, StatusCode: e.Status, ErrorType: e.Code, ErrorMessage: e.Message}
	if len(req.ProfileID) > 128 {
		data.ProfileID = ""
	}
	if !req.Token.Empty() {
		data.TokenSHA256 = tokenSHA256(req.Token.Reveal())
	}
	reply := AttestReply{StatusCode: e.Status, RequestID: id, ErrorType: e.Code, ErrorMessage: e.Message}
	// The subject is the profile when there is one; with none (the request
	// did not decode) it is omitted: the contract's subject is a session,
	// profile or user id, never a request id.
	o := Outcome{Key: "attest:" + id, Fingerprint: fp, StatusCode: e.Status, ErrorType: e.Code, CreatedAt: a.Now()}
	return a.complete(ctx, o, domain.EventAttestFailed, data.ProfileID, data, reply)
}

// complete fills in o's event and reply, makes o the request's outcome
// (unless one is stored already) and sends the stored one.
func (a *Attest) complete(ctx context.Context, o Outcome, typ, subject string, data AttestEventData, reply AttestReply) (Output, error) {
	data.Position, data.ReplyRefused = positionOf(ctx), replyRefused(ctx)
	ev, err := domain.NewEvent(domain.EventID("attest", data.RequestID), typ, subject, o.CreatedAt, data)
	if err != nil {
		return Output{}, err
	}
	if o.Reply, err = json.Marshal(reply); err != nil {
		return Output{}, err
	}
	o.Event = ev
	stored, made, err := a.Done.Complete(ctx, o)
	if err != nil {
		return Output{}, err
	}
	return a.send(ctx, stored, o.Fingerprint, false, made)
}

// send completes a stored outcome if needed (resume), announces a repeat
// (Completer.Repeated) and builds the reply,
// putting back the bearer secrets: the session token (derived from the
// session id) and a fresh session JWT while the session is active. Only the
// delivery that made the outcome (made), or a repeat while the trusted
// token is still valid (o.SecretsUntil), gets them: a copy of a request
// must not yield a session's secrets long after its token expired.
func (a *Attest) send(ctx context.Context, o Outcome, fp string, resume, made bool) (Output, error) {
	if o.Fingerprint != "" && o.Fingerprint != fp {
		// Another request reused this request_id: it gets neither the first
		// outcome (which may hold a session) nor an event of its own.
		var r struct {
			RequestID string `json:"request_id"`
		}
		_ = json.Unmarshal(o.Reply, &r)
		// Its own event is a light attest.repeated flagged
		// different_request, so that its stream sequence is accounted for.
		e := domain.ErrInvalidRequest.With("request_id was already used by a different request")
		if err := a.Done.Repeated(ctx, o, a.Now(), e.Status, e.Code, true); err != nil {
			return Output{}, err
		}
		raw, _ := json.Marshal(AttestReply{StatusCode: e.Status, RequestID: r.RequestID, ErrorType: e.Code, ErrorMessage: e.Message})
		return Output{Reply: raw, Outcome: Outcome{Key: o.Key, StatusCode: e.Status, ErrorType: e.Code, Reply: raw}}, nil
	}
	if resume {
		var err error
		if o, err = a.Done.Resume(ctx, o); err != nil {
			return Output{}, err
		}
	}
	// Answered from an outcome another message made: announced by an
	// attest.repeated (nothing for a redelivery of the message that made it).
	if err := a.Done.Repeated(ctx, o, a.Now(), o.StatusCode, "", false); err != nil {
		return Output{}, err
	}
	if o.SessionID == "" || (!made && a.Now().After(o.SecretsUntil)) {
		return Output{Reply: o.Reply, Outcome: o}, nil
	}
	var r AttestReply
	if err := json.Unmarshal(o.Reply, &r); err != nil {
		return Output{}, fmt.Errorf("decode stored reply: %w", err)
	}
	r.SessionToken = a.Issuer.SessionToken(o.SessionID).Reveal()
	if st, ok := a.View.Session(o.SessionID); ok && st.Active(a.Now()) && r.Session != nil {
		jwt, err := a.Issuer.MintJWT(st.Session, a.Now())
		if err != nil {
			return Output{}, err
		}
		r.SessionJWT = jwt.Reveal()
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return Output{}, err
	}
	return Output{Reply: raw, Outcome: o}, nil
}

func tokenSHA256(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}
