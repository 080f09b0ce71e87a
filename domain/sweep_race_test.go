//go:build race

package domain

// sweepStride thins the differential sweeps of the member-name scanner
// under the race detector (which makes them about 7 times slower, and
// which CI always uses): every sweepStride-th input of the exhaustive
// sweeps, a sweepStride-th of the random ones. The fuzz test and a run
// without -race take them whole.
const sweepStride = 4
