//go:build !race

package domain

// sweepStride: see sweep_race_test.go.
const sweepStride = 1
