package mongostore_test

import (
	"os"
	"testing"
)

var tempDirs []string

func mkTemp() (string, error) {
	d, err := os.MkdirTemp("", "tat-store-test-")
	if err == nil {
		tempDirs = append(tempDirs, d)
	}
	return d, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if ferret != nil {
		ferret.Stop()
	}
	for _, d := range tempDirs {
		_ = os.RemoveAll(d)
	}
	os.Exit(code)
}
