package dht

import (
	"fmt"
	"testing"
)

func TestSeedSweep(t *testing.T) {
	for seed := int64(100); seed < 130; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := newTestRing(t, DefaultConfig(), seed)
			for i := 0; i < 60; i++ {
				r.addN(1)
				r.stabilizeRound()
			}
			settle(t, r)
			want := putKeys(t, r, 300)
			killSome(r, 0.2)
			r.churning = true
			for k, v := range putKeys(t, r, 50) {
				want[k+"x"] = v
				if _, err := r.live()[0].Put(t.Context(), k+"x", []byte(v), PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			r.churning = false
			settle(t, r)
			checkLookups(t, r, 300)
			checkRecords(t, r, want)
		})
	}
}
