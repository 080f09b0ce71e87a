package handlers_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/tat-worker/attest/domain"
	"github.com/tat-worker/attest/handlers"
)

// TestReadsPageBudgetIsExact: MaxReplyBytes bounds the encoded items of a
// page, each counted with its separator: items that take exactly the
// budget all fit; one byte less and the page ends an item earlier, with a
// next_cursor. (Found missing by mutation testing, make mutate.)
func TestReadsPageBudgetIsExact(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	var ids []string
	var sizes []int
	for i := range 3 {
		id := fmt.Sprintf("user-%d", i)
		e.addUser(t, id, id+"@example.com", domain.UserActive)
		u, _ := e.view.User(id)
		b, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		ids, sizes = append(ids, id), append(sizes, len(b)+1)
	}
	twoItems := sizes[0] + sizes[1]
	for _, tc := range []struct {
		budget int
		want   int
	}{
		{twoItems, 2},
		{twoItems - 1, 1},
		{twoItems + sizes[2], 3},
	} {
		h := &handlers.Reads{View: e.view, Barrier: &lateBarrier{}, Now: e.clock.Now, MaxReplyBytes: tc.budget}
		r, wire := readCall(t, h.UserList, map[string]any{"limit": 3})
		if r.Users == nil || len(*r.Users) != tc.want {
			t.Fatalf("budget %d: %v users, want %d", tc.budget, r.Users, tc.want)
		}
		next := ""
		if tc.want < 3 {
			next = ids[tc.want-1]
		}
		if wire["next_cursor"] != next {
			t.Errorf("budget %d: next_cursor %v, want %q", tc.budget, wire["next_cursor"], next)
		}
	}
}
