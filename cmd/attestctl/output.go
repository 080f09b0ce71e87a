package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tat-worker/attest/client"
)

// What people see: tables (text/tabwriter) for lists, "field: value" lines
// for one object. Times are UTC, RFC 3339 to the second, as the worker
// writes them; an empty value is "-".

// newTable returns a tabwriter that aligns columns two spaces apart and
// writes the header.
func newTable(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

// row writes one table row.
func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = orDash(strings.NewReplacer("\t", " ", "\n", " ").Replace(c))
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

// fields writes "name: value" lines, values aligned.
type fields struct{ tw *tabwriter.Writer }

func newFields(w io.Writer) *fields {
	return &fields{tw: tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)}
}

func (f *fields) add(name, value string) {
	fmt.Fprintf(f.tw, "%s:\t%s\n", name, orDash(value))
}

func (f *fields) flush() error { return f.tw.Flush() }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// when formats a time as the worker does; the zero time is "-".
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func itoa[T ~int | ~int64 | ~uint64](n T) string { return strconv.FormatInt(int64(n), 10) }

// compactJSON prints a JSON value on one line ("-" for none).
func compactJSON(v any) string {
	if v == nil {
		return "-"
	}
	if raw, ok := v.(json.RawMessage); ok && len(raw) == 0 {
		return "-"
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" || string(b) == "{}" {
		return "-"
	}
	return string(b)
}

// Profiles.

func profileKeys(p client.Profile) string {
	if p.JWKSURL != "" {
		return "jwks"
	}
	return itoa(len(p.PublicKeys))
}

func writeProfiles(w io.Writer, ps []client.Profile) error {
	tw := newTable(w, "PROFILE ID", "NAME", "ISSUER", "KEYS", "JIT", "VERSION")
	for _, p := range ps {
		row(tw, p.ProfileID, p.Name, p.Issuer, profileKeys(p), yesNo(p.CanJITProvision), itoa(p.Version))
	}
	return tw.Flush()
}

func writeProfile(w io.Writer, p client.Profile) error {
	f := newFields(w)
	f.add("profile_id", p.ProfileID)
	f.add("name", p.Name)
	f.add("issuer", p.Issuer)
	f.add("audience", p.Audience)
	if p.JWKSURL != "" {
		f.add("jwks_url", p.JWKSURL)
	} else {
		f.add("public_keys", itoa(len(p.PublicKeys))+" PEM")
	}
	m := p.AttributeMapping
	mapping := "email=" + m.Email + " token_id=" + m.TokenID
	if m.ExternalUserID != "" {
		mapping += " external_user_id=" + m.ExternalUserID
	}
	if m.RoleIDs != "" {
		mapping += " role_ids=" + m.RoleIDs
	}
	f.add("attribute_mapping", mapping)
	f.add("can_jit_provision", yesNo(p.CanJITProvision))
	if p.MaxTokenLifetimeSeconds > 0 {
		f.add("max_token_lifetime", (time.Duration(p.MaxTokenLifetimeSeconds) * time.Second).String())
	}
	f.add("version", itoa(p.Version))
	f.add("created_at", when(p.CreatedAt))
	f.add("updated_at", when(p.UpdatedAt))
	return f.flush()
}

// Users.

func userEmails(u client.User) string {
	var out []string
	for _, e := range u.Emails {
		s := e.Email
		if !e.Verified {
			s += " (unverified)"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func userName(u client.User) string {
	return strings.Join(strings.Fields(u.Name.FirstName+" "+u.Name.MiddleName+" "+u.Name.LastName), " ")
}

func writeUsers(w io.Writer, us []client.User) error {
	tw := newTable(w, "USER ID", "EMAILS", "STATUS", "VERSION", "UPDATED")
	for _, u := range us {
		row(tw, u.UserID, userEmails(u), u.Status, itoa(u.Version), when(u.UpdatedAt))
	}
	return tw.Flush()
}

func writeUser(w io.Writer, u client.User) error {
	f := newFields(w)
	f.add("user_id", u.UserID)
	f.add("name", userName(u))
	f.add("emails", userEmails(u))
	f.add("status", u.Status)
	f.add("external_id", u.ExternalID)
	f.add("trusted_metadata", compactJSON(u.TrustedMetadata))
	f.add("version", itoa(u.Version))
	f.add("created_at", when(u.CreatedAt))
	f.add("updated_at", when(u.UpdatedAt))
	return f.flush()
}

// Sessions.

// factorTypes names a session's factors: "trusted_auth_token", with a
// count when there are several of a type.
func factorTypes(s client.Session) string {
	var order []string
	n := map[string]int{}
	for _, f := range s.AuthenticationFactors {
		if n[f.Type] == 0 {
			order = append(order, f.Type)
		}
		n[f.Type]++
	}
	for i, t := range order {
		if n[t] > 1 {
			order[i] = fmt.Sprintf("%s x%d", t, n[t])
		}
	}
	return strings.Join(order, ", ")
}

func writeSessions(w io.Writer, ss []client.Session) error {
	tw := newTable(w, "SESSION ID", "STARTED", "EXPIRES", "FACTORS", "ROLES")
	for _, s := range ss {
		row(tw, s.SessionID, when(s.StartedAt), when(s.ExpiresAt), factorTypes(s), strings.Join(s.Roles, ","))
	}
	return tw.Flush()
}

// sessionFields adds a session's lines to f.
func sessionFields(f *fields, s client.Session) {
	f.add("session_id", s.SessionID)
	f.add("user_id", s.UserID)
	f.add("started_at", when(s.StartedAt))
	f.add("last_accessed_at", when(s.LastAccessedAt))
	f.add("expires_at", when(s.ExpiresAt))
	f.add("roles", strings.Join(s.Roles, ","))
	f.add("custom_claims", compactJSON(s.CustomClaims))
	for _, a := range s.AuthenticationFactors {
		desc := a.Type + " via " + a.DeliveryMethod
		if t := a.TrustedAuthTokenFactor; t != nil {
			desc += ", profile " + t.ProfileID + ", token " + t.TokenID
		}
		desc += ", last " + when(a.LastAuthenticatedAt)
		f.add("factor", desc)
	}
}

func writeSession(w io.Writer, s client.Session) error {
	f := newFields(w)
	sessionFields(f, s)
	return f.flush()
}

// writeSecrets prints the bearer secrets of a reply, each on its own
// line after a blank one, for the person who asked for them.
func writeSecrets(w io.Writer, token, jwt client.Secret) error {
	if token.Empty() && jwt.Empty() {
		return nil
	}
	fmt.Fprintln(w)
	f := newFields(w)
	if !token.Empty() {
		f.add("session_token", token.Reveal())
	}
	if !jwt.Empty() {
		f.add("session_jwt", jwt.Reveal())
	}
	return f.flush()
}
