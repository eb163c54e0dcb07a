package signin

import (
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
)

// TestQRRoundTrip reads the half-block drawing back into modules and
// compares them with the encoder's: light cells drawn, dark ones blank,
// a two-module quiet zone all round.
func TestQRRoundTrip(t *testing.T) {
	const content = "https://sso.example.com/realms/acme/device?user_code=BCDF-GHJK"
	q, err := qrcode.New(content, qrcode.Low)
	if err != nil {
		t.Fatal(err)
	}
	q.DisableBorder = true
	want := q.Bitmap()
	n := len(want) + 2*qrQuiet

	rows := strings.Split(renderQR(content), "\n")
	if len(rows) != (n+1)/2 {
		t.Fatalf("%d text rows for %d modules", len(rows), n)
	}
	for ty, row := range rows {
		cells := []rune(row)
		if len(cells) != n {
			t.Fatalf("row %d is %d cells, want %d", ty, len(cells), n)
		}
		for x, c := range cells {
			top := c == '█' || c == '▀'
			bottom := c == '█' || c == '▄'
			for dy, light := range []bool{top, bottom} {
				y := 2*ty + dy
				if y >= n {
					continue
				}
				mx, my := x-qrQuiet, y-qrQuiet
				wantLight := mx < 0 || my < 0 || mx >= len(want) || my >= len(want) || !want[my][mx]
				if light != wantLight {
					t.Fatalf("module (%d,%d): light %v, want %v", x, y, light, wantLight)
				}
			}
		}
	}
}
