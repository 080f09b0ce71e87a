package client_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tat-worker/attest/client"
)

// TestReads: every read of the reads service, and its not-found refusals.
// Served by the worker's h-reads work: skipped until that is merged.
func TestReads(t *testing.T) {
	c := newClient(t)
	f := newFixture(t, c)
	g := newFixture(t, c)
	ctx := testCtx(t)
	s := f.attest(t, 60)

	t.Run("GetProfile", func(t *testing.T) {
		p, err := c.GetProfile(ctx, f.profile)
		if err != nil || p.ProfileID != f.profile || p.Version != 1 || p.Issuer != idp.Iss {
			t.Fatalf("GetProfile = %+v, %v", p, err)
		}
		_, err = c.GetProfile(ctx, "no-such-profile")
		refusal(t, err, client.ErrTrustedTokenProfileNotFound)
	})
	t.Run("ListProfiles", func(t *testing.T) {
		ps, err := c.ListProfiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, 0, len(ps))
		for _, p := range ps {
			ids = append(ids, p.ProfileID)
		}
		if !slices.Contains(ids, f.profile) || !slices.Contains(ids, g.profile) {
			t.Fatalf("profiles %v lack %s or %s", ids, f.profile, g.profile)
		}
	})
	t.Run("GetUser", func(t *testing.T) {
		u, err := c.GetUser(ctx, f.userID)
		if err != nil || u.UserID != f.userID || u.Emails[0].Email != f.email {
			t.Fatalf("GetUser = %+v, %v", u, err)
		}
		_, err = c.GetUser(ctx, "user-never-was")
		refusal(t, err, client.ErrUserNotFound)
	})
	t.Run("GetUserByEmail", func(t *testing.T) {
		u, err := c.GetUserByEmail(ctx, strings.ToUpper(f.email))
		if err != nil || u.UserID != f.userID {
			t.Fatalf("GetUserByEmail = %+v, %v", u, err)
		}
		_, err = c.GetUserByEmail(ctx, "nobody-at-all@example.com")
		refusal(t, err, client.ErrUserNotFound)
	})
	t.Run("ListUsers pages", func(t *testing.T) {
		seen := map[string]bool{}
		req := client.ListUsersRequest{Limit: 1}
		for pages := 0; ; pages++ {
			page, err := c.ListUsers(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Users) > 1 {
				t.Fatalf("a page of limit 1 holds %d users", len(page.Users))
			}
			for _, u := range page.Users {
				if seen[u.UserID] {
					t.Fatalf("user %s on two pages", u.UserID)
				}
				seen[u.UserID] = true
			}
			if page.NextCursor == "" {
				break
			}
			if pages > 10000 {
				t.Fatal("paging does not end")
			}
			req.Cursor = page.NextCursor
		}
		if !seen[f.userID] || !seen[g.userID] {
			t.Fatalf("paging missed %s or %s", f.userID, g.userID)
		}
		_, err := c.ListUsers(ctx, client.ListUsersRequest{Limit: -1})
		refusal(t, err, client.ErrInvalidRequest)
	})
	t.Run("ListSessions and GetSession", func(t *testing.T) {
		ss, err := c.ListSessions(ctx, f.userID)
		if err != nil || len(ss) != 1 || ss[0].SessionID != s.Session.SessionID {
			t.Fatalf("ListSessions = %+v, %v", ss, err)
		}
		got, err := c.GetSession(ctx, s.Session.SessionID)
		if err != nil || got.SessionID != s.Session.SessionID || got.UserID != f.userID {
			t.Fatalf("GetSession = %+v, %v", got, err)
		}
		if _, err := c.AdminRevoke(ctx, client.AdminRevokeRequest{SessionID: s.Session.SessionID}); err != nil {
			t.Fatal(err)
		}
		_, err = c.GetSession(ctx, s.Session.SessionID)
		refusal(t, err, client.ErrSessionNotFound)
		if ss, err := c.ListSessions(ctx, f.userID); err != nil || len(ss) != 0 {
			t.Fatalf("ListSessions after revoke = %+v, %v", ss, err)
		}
		_, err = c.ListSessions(ctx, "user-never-was")
		refusal(t, err, client.ErrUserNotFound)
	})
}
