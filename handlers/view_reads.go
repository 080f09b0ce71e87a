package handlers

import (
	"cmp"
	"container/heap"
	"slices"

	"github.com/tat-worker/attest/domain"
)

// The view's read side for the reads service and for ending a user's
// sessions: pages in id order, and a user's sessions by index.

// SessionsOfUser returns every session the view holds for userID (active
// or not), in session id order.
func (v *View) SessionsOfUser(userID string) []domain.SessionState {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []domain.SessionState
	s, ok := v.firstSession(v.hash(userID), userID)
	for ; ok && s != none; s = v.userSessions.next(s) {
		out = append(out, v.state(v.sessions.get(s)))
	}
	slices.SortFunc(out, func(a, b domain.SessionState) int {
		return cmp.Compare(a.Session.SessionID, b.Session.SessionID)
	})
	if out == nil {
		out = []domain.SessionState{}
	}
	return out
}

// ProfilesPage returns, in profile id order, at most limit live profiles
// whose id sorts after after ("" for the first page), and whether more
// follow.
func (v *View) ProfilesPage(after string, limit int) ([]domain.Profile, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	ids := smallestAfter(after, limit+1, func(yield func([]byte)) {
		for id, e := range v.profiles {
			if !e.deleted {
				yield([]byte(id))
			}
		}
	})
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
	ids := smallestAfter(after, limit+1, func(yield func([]byte)) {
		v.users.each(func(_ uint32, p []byte) bool {
			if !userDeleted(p) {
				yield(userIDOf(p))
			}
			return true
		})
	})
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	out := make([]domain.User, len(ids))
	for i, id := range ids {
		slot, _ := v.userSlot(id)
		out[i] = v.user(v.users.get(slot))
	}
	return out, more
}

// smallestAfter returns, in order, the n smallest of the keys each gives
// that sort above after (a key given may alias memory that changes after
// the call: what is kept is copied). It holds at most n keys at a time (a
// bounded max-heap), so a page costs O(keys log n) and O(n) memory
// whatever the size of the view.
func smallestAfter(after string, n int, each func(yield func(k []byte))) []string {
	if n <= 0 {
		return nil
	}
	h := &maxHeap{}
	each(func(k []byte) {
		switch {
		case string(k) <= after:
		case h.Len() < n:
			heap.Push(h, string(k))
		case string(k) < (*h)[0]:
			(*h)[0] = string(k)
			heap.Fix(h, 0)
		}
	})
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
