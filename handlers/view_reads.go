package handlers

import (
	"cmp"
	"container/heap"
	"slices"

	"github.com/tat-worker/attest/domain"
)

// The view's read side for the reads service and for ending a user's
// sessions: pages in id order, and a user's sessions by index.

// indexUserSession records that session id belongs to userID (a session
// never changes user). Called with v.mu held.
func (v *View) indexUserSession(userID, id string) {
	ids := v.byUser[userID]
	if ids == nil {
		ids = map[string]struct{}{}
		v.byUser[userID] = ids
	}
	ids[id] = struct{}{}
}

// unindexUserSession forgets a swept session. Called with v.mu held.
func (v *View) unindexUserSession(userID, id string) {
	ids := v.byUser[userID]
	delete(ids, id)
	if len(ids) == 0 {
		delete(v.byUser, userID)
	}
}

// SessionsOfUser returns every session the view holds for userID (active
// or not), in session id order.
func (v *View) SessionsOfUser(userID string) []domain.SessionState {
	v.mu.RLock()
	defer v.mu.RUnlock()
	ids := v.byUser[userID]
	out := make([]domain.SessionState, 0, len(ids))
	for id := range ids {
		out = append(out, v.state(v.sessions[id]))
	}
	slices.SortFunc(out, func(a, b domain.SessionState) int {
		return cmp.Compare(a.Session.SessionID, b.Session.SessionID)
	})
	return out
}

// ProfilesPage returns, in profile id order, at most limit live profiles
// whose id sorts after after ("" for the first page), and whether more
// follow.
func (v *View) ProfilesPage(after string, limit int) ([]domain.Profile, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	ids := smallestAfter(v.profiles, after, limit+1, func(e profileEntry) bool { return !e.deleted })
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	out := make([]domain.Profile, len(ids))
	for i, id := range ids {
		out[i] = v.profiles[id].p
	}
	return out, more
}

// UsersPage returns, in user id order, at most limit live users whose id
// sorts after after ("" for the first page), and whether more follow.
func (v *View) UsersPage(after string, limit int) ([]domain.User, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	ids := smallestAfter(v.users, after, limit+1, func(e *userRec) bool { return !e.deleted })
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	out := make([]domain.User, len(ids))
	for i, id := range ids {
		out[i] = v.user(v.users[id])
	}
	return out, more
}

// smallestAfter returns, in order, the n smallest keys of m above after
// whose value keep accepts. It holds at most n keys at a time (a bounded
// max-heap), so a page costs O(len(m) log n) and O(n) memory whatever the
// size of the view.
func smallestAfter[V any](m map[string]V, after string, n int, keep func(V) bool) []string {
	if n <= 0 {
		return nil
	}
	h := &maxHeap{}
	for k, val := range m {
		if k <= after || !keep(val) {
			continue
		}
		if h.Len() < n {
			heap.Push(h, k)
		} else if k < (*h)[0] {
			(*h)[0] = k
			heap.Fix(h, 0)
		}
	}
	out := []string(*h)
	slices.Sort(out)
	return out
}

// maxHeap is a heap of strings with the largest on top.
type maxHeap []string

func (h maxHeap) Len() int           { return len(h) }
func (h maxHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h maxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *maxHeap) Push(x any)        { *h = append(*h, x.(string)) }
func (h *maxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
