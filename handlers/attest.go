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

// attempt is one delivery of an attest request on its way to the
// request's outcome: what it asked, when it is judged, and what has been
// found out about it so far. It is what the steps of Handle and Abandon
// pass along.
type attempt struct {
	id  string // the request id (see commandID)
	req domain.AttestRequest
	fp  string // what the request asked (see fingerprint)

	now     time.Time // when this delivery runs
	checkAt time.Time // when its token's times and replay claim are judged (see judgedAt)
	// A redelivery, and when the stream stored the request (zero: not
	// known): see mayHaveMade.
	redelivered bool
	publishedAt time.Time
	lookedUp    bool // a redelivery looked its outcome up (see attest)

	// Found by attest, in this order.
	claims   map[string]any // session_custom_claims as validated
	minutes  int            // session_duration_minutes, 0 when not given
	profile  domain.Profile
	token    *domain.VerifiedToken
	user     domain.User
	evidence domain.FactorEvidence // what the token adds to a session
	session  *domain.SessionState  // the session started or changed (nil: verify only)
	created  bool                  // the session was started by this request
}

// key is the key of the request's outcome.
func (at *attempt) key() string { return "attest:" + at.id }

// decodeAttempt decodes an attest request. The error is a refusal: the request
// did not decode or its request_id is not valid (then the request is known
// by another id, see commandID).
func decodeAttempt(in Input) (*attempt, error) {
	at := &attempt{}
	derr := domain.DecodeStrict(in.Data, &at.req)
	at.id = commandID(at.req.RequestID, in)
	if derr == nil && at.req.RequestID != "" && at.req.RequestID != at.id {
		derr = domain.ErrInvalidRequest.With("request_id must be 1 to 128 characters of A-Za-z0-9._:-")
	}
	at.fp = fingerprint(at.req, in.Data, derr)
	return at, derr
}

// Handle runs one attest request to its one outcome. A returned error is
// transient: the worker retries the message; every other result, including
// every refusal, comes back as an Output whose event has been published.
func (a *Attest) Handle(ctx context.Context, in Input) (Output, error) {
	ctx = withReplyRefused(withPosition(ctx, in), in)
	at, derr := decodeAttempt(in)
	// A redelivery looks its outcome up only before its first write (see
	// attest): one that is refused before that needs no lookup, since the
	// outcome it records loses to a stored one.
	at.redelivered, at.publishedAt = in.Redelivered, in.PublishedAt
	if derr != nil {
		return a.fail(ctx, at, derr)
	}
	at.now = a.Now().UTC()
	at.checkAt = judgedAt(in, at.now)
	stored, err := a.attest(ctx, at)
	switch {
	case stored != nil:
		return a.sendStored(ctx, *stored, at.fp)
	case err != nil && Permanent(err):
		if at.redelivered && !at.lookedUp {
			// Refused before it looked for its user: on a JIT profile an
			// earlier delivery (the JWKS was up then, the session not yet
			// revoked) may have made the user and died before announcing
			// it, and the refusal, the request's outcome, leaves no Abandon
			// to do it. Only then, and only on a JIT profile: on a FerretDB
			// without the _id index of worker/embedded every read scans a
			// collection, and reads added to the redeliveries of a loaded
			// fleet tipped it into timeouts and retries in the chaos tests
			// (so a session such a delivery stored is not looked for here;
			// see the README).
			if p, ok := a.View.Profile(at.req.ProfileID); ok && p.CanJITProvision {
				if err := a.resumeJIT(ctx, at.id); err != nil {
					return Output{}, err
				}
			}
		}
		return a.fail(ctx, at, err)
	case err != nil:
		if at.redelivered && !at.lookedUp {
			// A transient failure before the outcome lookup (the view
			// cannot catch up) must not hold up the answer of a request
			// whose outcome an earlier delivery stored. After the lookup
			// missed, reading again would only add a read (a scan of the
			// collection on a FerretDB without the _id index) to a store
			// that may be failing from overload.
			if o, ok, gerr := a.Done.Outcomes.Get(ctx, at.key()); gerr == nil && ok {
				return a.sendStored(ctx, o, at.fp)
			}
		}
		return Output{}, err
	}
	return a.succeed(ctx, at)
}

// redeliveryClockMargin is how far the clocks of workers and NATS servers
// may differ for mayHaveMade (beyond TAT_CLOCK_SKEW, which is about token
// issuers' clocks).
const redeliveryClockMargin = time.Minute

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
	at, derr := decodeAttempt(in)
	if o, ok, err := a.Done.Outcomes.Get(ctx, at.key()); err != nil {
		return Output{}, err
	} else if ok {
		return a.sendStored(ctx, o, at.fp)
	}
	if derr == nil {
		at.checkAt = judgedAt(in, a.Now().UTC())
		if out, done, err := a.leftovers(ctx, at); err != nil || done {
			return out, err
		}
	}
	return a.fail(ctx, at, domain.ErrInternal.Wrap(cause, "the request could not be completed"))
}

// attest decides the request, filling in at. It returns the request's
// outcome instead when another delivery of it stored one meanwhile.
func (a *Attest) attest(ctx context.Context, at *attempt) (*Outcome, error) {
	var err error
	if at.claims, err = at.req.Validate(); err != nil {
		return nil, err
	}
	profile, ok := a.View.Profile(at.req.ProfileID)
	if !ok {
		// Created a moment ago through another worker? Catch up once.
		if err := a.Barrier.CatchUp(ctx); err != nil {
			return nil, err
		}
		if profile, ok = a.View.Profile(at.req.ProfileID); !ok {
			return nil, domain.ErrProfileNotFound.With("no trusted token profile %q", at.req.ProfileID)
		}
	}
	at.profile = profile
	if at.token, err = a.verify(ctx, profile, at.req.Token.Reveal(), at.checkAt); err != nil {
		return nil, err
	}
	if at.req.SessionDurationMinutes != nil {
		at.minutes = *at.req.SessionDurationMinutes
	}
	var existing *domain.SessionState
	if !at.req.SessionToken.Empty() || !at.req.SessionJWT.Empty() {
		st, err := a.book().find(ctx, sessionRef{token: at.req.SessionToken, jwt: at.req.SessionJWT}, at.now, true)
		if err != nil {
			return nil, err
		}
		existing = &st
	}
	if at.redelivered {
		// Before the first write (a JIT user, the replay claim): an
		// earlier delivery may have ended the request in an outcome
		// without writing anything (a refusal that might not be made now:
		// the JWKS was down, the user did not exist yet), and this
		// delivery must not write a session or a claim that outcome does
		// not announce. Refusals above need no lookup: what they record
		// loses to a stored outcome, and they write nothing. On a FerretDB
		// without the _id index of worker/embedded every read is a scan of
		// the collection: this is the one read of
		// a redelivery that no earlier delivery got to (the JIT record is
		// read only when the view suggests it, see mayHaveMade).
		at.lookedUp = true
		if o, ok, err := a.Done.Outcomes.Get(ctx, at.key()); err != nil {
			return nil, fmt.Errorf("look up outcome: %w", err)
		} else if ok {
			return &o, nil
		}
	}
	if at.user, err = a.findUser(ctx, at); err != nil {
		return nil, err
	}
	if existing != nil && existing.Session.UserID != at.user.UserID {
		return nil, domain.ErrUserIDMismatch.With("the session belongs to another user than the token's")
	}
	// The replay claim is the commit point for the token: every refusal
	// that does not depend on it has been made above.
	// Judged at checkAt, like the token's times: a claim live then is a
	// replay even if it has expired since.
	holder, inserted, err := a.Replays.Claim(ctx, profile.ProfileID, at.token.TokenID, at.id, at.token.ExpiresAt.Add(a.Skew), at.checkAt)
	if err != nil {
		return nil, fmt.Errorf("claim token id: %w", err)
	}
	if !inserted {
		// Only a conflict reaches the store here: a repeated request
		// answers with its first outcome, another request is a replay.
		o, ok, err := a.Done.Outcomes.Get(ctx, at.key())
		switch {
		case err != nil:
			return nil, fmt.Errorf("look up outcome: %w", err)
		case ok:
			return &o, nil
		case holder != at.id:
			return nil, domain.ErrTokenReplayed.With("token id already used for this profile")
		}
	}
	at.evidence = domain.FactorEvidence{ProfileID: profile.ProfileID, TokenID: at.token.TokenID}
	if profile.AttributeMapping.RoleIDs != "" && at.token.RoleIDs != nil {
		at.evidence.Roles = at.token.RoleIDs
	}
	switch {
	case existing != nil:
		st, err := a.attach(ctx, at, *existing)
		if err != nil {
			return nil, err
		}
		at.session = &st
	case at.minutes > 0:
		st, err := a.start(ctx, at)
		if err != nil {
			return nil, err
		}
		at.session, at.created = &st, true
	}
	return nil, nil
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

func (a *Attest) findUser(ctx context.Context, at *attempt) (domain.User, error) {
	email, err := domain.NormalizeEmail(at.token.Email)
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
	if ok && a.mayHaveMade(at, u, email) {
		// A user made just in time by an earlier delivery but not
		// announced: the view holds it from the store after a restart,
		// and this delivery would not provision (nor announce) it.
		if err := a.resumeJIT(ctx, at.id); err != nil {
			return domain.User{}, err
		}
	}
	if !ok {
		if !at.profile.CanJITProvision {
			return domain.User{}, domain.ErrUserNotFound.With("no user has the token's email")
		}
		if u, err = a.provision(ctx, at, email); err != nil {
			return domain.User{}, err
		}
	}
	if !u.Active() {
		return domain.User{}, domain.ErrUserNotFound.With("the user is not active")
	}
	return u, nil
}

// mayHaveMade reports whether u, found in the view, may be the user an
// earlier delivery of this request made just in time: a redelivery on a
// profile with just-in-time users, u has the JIT id of the token's
// (normalized) email, and u was made no earlier than the request was
// stored (give or take the clock skew, redeliveryClockMargin and the
// second created_at is truncated to). Only then does the request look up
// its JIT record.
func (a *Attest) mayHaveMade(at *attempt, u domain.User, email string) bool {
	if !at.redelivered || !at.profile.CanJITProvision || u.UserID != domain.JITUserID(email) {
		return false
	}
	return at.publishedAt.IsZero() || !u.CreatedAt.Add(a.Skew+redeliveryClockMargin+time.Second).Before(at.publishedAt)
}

// provision creates the user for a JIT profile. The user id is fixed by
// the address, so workers racing on one address make one user: the email
// claim insert decides, and the loser uses the winner's record. Its
// user.created is recorded under the request (an outbox) before the user is
// written, so a retry, or Abandon, announces a user an earlier delivery
// wrote.
func (a *Attest) provision(ctx context.Context, at *attempt, email string) (domain.User, error) {
	u, err := domain.NewJITUser(at.token.Email, at.token.ExternalUserID, at.now)
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
	e, err := domain.NewEvent(domain.EventID("jit-user", fmt.Sprintf("%s#%d", u.UserID, u.Version)), domain.EventUserCreated, u.UserID, at.now, UserEventData{User: &u})
	if err != nil {
		return domain.User{}, err
	}
	// A retry of this request finds its first attempt's record, and
	// writes and announces that one.
	rec, _, err := a.Done.Outcomes.Record(ctx, Outcome{Key: jitKey(at.id), StatusCode: 200, Event: e, CreatedAt: at.now})
	if err != nil {
		return domain.User{}, fmt.Errorf("record user.created: %w", err)
	}
	made, err := a.announceJIT(ctx, rec)
	if err != nil {
		return domain.User{}, err
	}
	if made.UserID != u.UserID {
		// The record is another request's that used this request id
		// first, for another address (ids are public; a reuse must not
		// hand its user, nor a session of it, to this token). Its user
		// is announced above, as that request would have; this request
		// is refused.
		return domain.User{}, domain.ErrInvalidRequest.With("request_id is already used by another request")
	}
	u = made
	if version, _, live := a.View.UserVersion(u.UserID); version >= u.Version {
		// Changed (or deleted) by an admin since an earlier delivery made
		// it, or, at the same version, made by the winner of a JIT race
		// whose record the store and the view keep: answer with the view's.
		if !live {
			return domain.User{}, domain.ErrUserNotFound.With("the user is not active")
		}
		u, _ = a.View.User(u.UserID)
	}
	return u, nil
}

func (a *Attest) start(ctx context.Context, at *attempt) (domain.SessionState, error) {
	// Fixed by the request id and the token: a retry finds its own session,
	// a later request reusing the id gets another one.
	sid := startedSessionID(at.id, at.req.Token.Reveal())
	s := domain.NewSession(sid, at.user.UserID, at.evidence, at.claims, at.now, at.minutes)
	claims, err := domain.EncodeClaims(s.CustomClaims)
	if err != nil {
		return domain.SessionState{}, err
	}
	st := domain.SessionState{Session: s, Revision: 1}
	stored, by, err := a.Sessions.InsertRevision(ctx, st, at.id)
	switch {
	case errors.Is(err, ErrConflict) && by == at.id:
		// An earlier attempt of this request made it.
		a.View.PutSession(stored)
		return stored, nil
	case err != nil:
		return domain.SessionState{}, fmt.Errorf("insert session: %w", err)
	}
	a.View.putSession(st, claims)
	return st, nil
}

// attach adds the factor to an existing session (see sessionBook.change).
// A revision an earlier attempt of this request stored is its own; one
// another request stored is applied to the view (its event may not be out
// yet; one of the sessions service's is published first, see announce),
// and the factor is added again on it unless the session ended.
func (a *Attest) attach(ctx context.Context, at *attempt, cur domain.SessionState) (domain.SessionState, error) {
	st, _, err := a.book().change(ctx, cur, sessionChange{
		reqID:   at.id,
		resumes: true,
		next: func(cur domain.SessionState) (nextRevision, bool, error) {
			if !cur.Active(at.now) {
				return nextRevision{}, false, domain.ErrSessionNotFound.With("the session ended")
			}
			next := domain.AttachFactor(cur.Session, at.evidence, at.claims, at.now, at.minutes)
			claims, err := domain.EncodeClaims(next.CustomClaims)
			if err != nil {
				return nextRevision{}, false, err
			}
			return nextRevision{st: domain.SessionState{Session: next}, claims: claims}, true, nil
		},
		lagging: func(ctx context.Context, st domain.SessionState, by string) error {
			// The sessions service's revision gets its event, as the
			// sessions service would publish it; another request's is
			// applied to the view as it is.
			if err := a.book().announce(ctx, st, by, at.now); err != nil {
				return err
			}
			a.View.PutSession(st)
			return nil
		},
	})
	return st, err
}

func (a *Attest) succeed(ctx context.Context, at *attempt) (Output, error) {
	d := draft{
		o: Outcome{Key: at.key(), Fingerprint: at.fp, StatusCode: 200, CreatedAt: at.now},
		data: AttestEventData{
			RequestID: at.id, ProfileID: at.profile.ProfileID, UserID: at.user.UserID,
			TokenID: at.token.TokenID, TokenSHA256: tokenSHA256(at.req.Token.Reveal()),
		},
		reply: AttestReply{StatusCode: 200, RequestID: at.id, UserID: at.user.UserID, User: &at.user},
		typ:   domain.EventAttestVerified, subject: at.user.UserID,
	}
	if at.session != nil {
		s := at.session.Session
		d.data.Session, d.data.SessionRevision, d.reply.Session = &s, at.session.Revision, &s
		d.typ, d.subject, d.o.SessionID = domain.EventSessionUpdated, s.SessionID, s.SessionID
		d.o.SecretsUntil = at.token.ExpiresAt.Add(a.Skew)
		if at.created {
			d.typ = domain.EventSessionCreated
		}
	}
	return a.complete(ctx, d)
}

func (a *Attest) fail(ctx context.Context, at *attempt, cause error) (Output, error) {
	e := domain.AsError(cause)
	// The subject is the profile when there is one; with none (the request
	// did not decode) it is omitted: the contract's subject is a session,
	// profile or user id, never a request id.
	d := draft{
		o:     Outcome{Key: at.key(), Fingerprint: at.fp, StatusCode: e.Status, ErrorType: e.Code, CreatedAt: a.Now()},
		data:  AttestEventData{RequestID: at.id, ProfileID: at.req.ProfileID, StatusCode: e.Status, ErrorType: e.Code, ErrorMessage: e.Message},
		reply: AttestReply{StatusCode: e.Status, RequestID: at.id, ErrorType: e.Code, ErrorMessage: e.Message},
		typ:   domain.EventAttestFailed,
	}
	if len(at.req.ProfileID) > 128 {
		d.data.ProfileID = ""
	}
	if !at.req.Token.Empty() {
		d.data.TokenSHA256 = tokenSHA256(at.req.Token.Reveal())
	}
	d.subject = d.data.ProfileID
	return a.complete(ctx, d)
}

// draft is an attest outcome before it is encoded: the outcome without
// its reply and event, the event's type, subject and data, and the reply
// (without bearer secrets).
type draft struct {
	o            Outcome
	typ, subject string
	data         AttestEventData
	reply        AttestReply
}

// complete encodes d's event and reply into its outcome, makes that the
// request's outcome (unless one is stored already) and answers.
func (a *Attest) complete(ctx context.Context, d draft) (Output, error) {
	d.data.Position, d.data.ReplyRefused = positionOf(ctx), replyRefused(ctx)
	ev, err := domain.NewEvent(domain.EventID("attest", d.data.RequestID), d.typ, d.subject, d.o.CreatedAt, d.data)
	if err != nil {
		return Output{}, err
	}
	o := d.o
	if o.Reply, err = json.Marshal(d.reply); err != nil {
		return Output{}, err
	}
	o.Event = ev
	stored, made, err := a.Done.Complete(ctx, o)
	if err != nil {
		return Output{}, err
	}
	if !made {
		// Another delivery stored the request's outcome first (and
		// Complete published it).
		return a.sendStored(ctx, stored, o.Fingerprint)
	}
	// The outcome is this delivery's: its event names this message's
	// position (no attest.repeated), and its reply is d.reply.
	return a.answer(stored, &d)
}

// sendStored answers from an outcome found stored (a redelivery, a
// repeated request_id, a request that lost a race to another delivery):
// it is completed if needed and, when another message made it, announced
// by an attest.repeated (nothing for a redelivery of the message that made
// it). A request that is not the one that made it (another fingerprint)
// gets neither the outcome nor an event of its own.
func (a *Attest) sendStored(ctx context.Context, o Outcome, fp string) (Output, error) {
	if o.Fingerprint != "" && o.Fingerprint != fp {
		return a.sendDifferent(ctx, o)
	}
	o, err := a.Done.Resume(ctx, o)
	if err != nil {
		return Output{}, err
	}
	if err := a.Done.Repeated(ctx, o, a.Now(), o.StatusCode, "", false); err != nil {
		return Output{}, err
	}
	return a.answer(o, nil)
}

// sendDifferent answers another request that reused the request_id of o:
// invalid_request, and a light attest.repeated flagged different_request
// so that its stream sequence is accounted for.
func (a *Attest) sendDifferent(ctx context.Context, o Outcome) (Output, error) {
	var r struct {
		RequestID string `json:"request_id"`
	}
	_ = json.Unmarshal(o.Reply, &r)
	e := domain.ErrInvalidRequest.With("request_id was already used by a different request")
	if err := a.Done.Repeated(ctx, o, a.Now(), e.Status, e.Code, true); err != nil {
		return Output{}, err
	}
	raw, _ := json.Marshal(AttestReply{StatusCode: e.Status, RequestID: r.RequestID, ErrorType: e.Code, ErrorMessage: e.Message})
	return Output{Reply: raw, Outcome: Outcome{Key: o.Key, StatusCode: e.Status, ErrorType: e.Code, Reply: raw}}, nil
}

// answer builds the reply to the request of outcome o, putting back the
// bearer secrets: the session token (derived from the session id) and a
// fresh session JWT while the session is active. Only the delivery that
// made the outcome (made: its draft, as encoded in o), or a repeat while
// the trusted token is still valid (o.SecretsUntil), gets them: a copy of
// a request must not yield a session's secrets long after its token
// expired. The reply with secrets is encoded from made's reply, or else
// from the stored reply decoded; the JWT is minted from made's session
// while the view holds that revision, or else from the view's.
func (a *Attest) answer(o Outcome, made *draft) (Output, error) {
	now := a.Now()
	if o.SessionID == "" || (made == nil && now.After(o.SecretsUntil)) {
		return Output{Reply: o.Reply, Outcome: o}, nil
	}
	var r AttestReply
	if made != nil {
		r = made.reply
	} else if err := decodeReply(o.Reply, &r); err != nil {
		return Output{}, fmt.Errorf("decode stored reply: %w", err)
	}
	r.SessionToken = a.Issuer.SessionToken(o.SessionID).Reveal()
	if r.Session != nil {
		var s *domain.Session
		if made != nil && a.View.holdsActive(o.SessionID, made.data.SessionRevision, now) {
			s = r.Session
		} else if st, ok := a.View.Session(o.SessionID); ok && st.Active(now) {
			s = &st.Session
		}
		if s != nil {
			jwt, err := a.Issuer.MintJWT(*s, now)
			if err != nil {
				return Output{}, err
			}
			r.SessionJWT = jwt.Reveal()
		}
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return Output{}, err
	}
	return Output{Reply: raw, Outcome: o}, nil
}

// decodeReply decodes a stored reply with its numbers as json.Number, as
// requests are decoded, so that encoding it again gives the numbers (in
// custom claims, trusted metadata) as they were.
func decodeReply(raw []byte, r *AttestReply) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(r)
}

func tokenSHA256(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}
