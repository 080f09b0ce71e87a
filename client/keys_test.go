package client_test

import (
	"errors"
	"testing"

	"github.com/tat-worker/attest/client"
)

// TestRotateAndListSigningKeys: a rotation publishes the next key (it
// signs after the publish window; the current key signs until then), a
// repeat of its change_id rotates nothing and gets the same outcome, a
// second rotation inside the window is refused, and the list shows both
// keys with their states.
func TestRotateAndListSigningKeys(t *testing.T) {
	c := newClient(t)
	before, err := c.ListSigningKeys(testCtx(t))
	if err != nil || len(before) == 0 {
		t.Fatalf("ListSigningKeys: %v, %v", before, err)
	}
	id := client.NewID()
	res, err := c.RotateSigningKey(testCtx(t), client.RotateKeyCommand{ChangeID: id})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.ChangeID != id || res.Key == nil || res.PreviousKey == nil ||
		res.Key.Number != res.PreviousKey.Number+1 || res.Key.KID == "" || !res.Key.SignFrom.After(res.Key.PublishAt) ||
		!res.PreviousKey.SignUntil.Equal(res.Key.SignFrom) {
		t.Fatalf("rotation: %+v key %+v previous %+v", res, res.Key, res.PreviousKey)
	}
	again, err := c.RotateSigningKey(testCtx(t), client.RotateKeyCommand{ChangeID: id})
	if err != nil || again.Key.KID != res.Key.KID {
		t.Fatalf("the same change_id again: %+v, %v", again, err)
	}
	_, err = c.RotateSigningKey(testCtx(t), client.RotateKeyCommand{})
	if !errors.Is(err, client.ErrKeyRotationInProgress) {
		t.Fatalf("a rotation in the publish window: %v", err)
	}
	after, err := c.ListSigningKeys(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, k := range after {
		states[k.KID] = k.State
	}
	if states[res.Key.KID] != client.KeyNext || states[res.PreviousKey.KID] != client.KeySigning {
		t.Errorf("keys after the rotation: %+v", after)
	}
}
