package signin

import (
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// qrQuiet is the quiet zone in modules. The standard asks for four; two
// scan reliably from a screen and save terminal rows.
const qrQuiet = 2

// renderQR draws content as a QR code of half-block characters: each text
// row holds two module rows. Light modules (and the quiet zone) are drawn,
// dark ones left blank, so the code reads correctly as light-on-dark; the
// QR style pins those two colours where the terminal has colour. It returns
// "" when content cannot be encoded.
func renderQR(content string) string {
	q, err := qrcode.New(content, qrcode.Low)
	if err != nil {
		return ""
	}
	q.DisableBorder = true
	bits := q.Bitmap()
	n := len(bits) + 2*qrQuiet
	light := func(x, y int) bool {
		x, y = x-qrQuiet, y-qrQuiet
		if x < 0 || y < 0 || y >= len(bits) || x >= len(bits[y]) {
			return true // quiet zone
		}
		return !bits[y][x]
	}
	var b strings.Builder
	for y := 0; y < n; y += 2 {
		if y > 0 {
			b.WriteByte('\n')
		}
		for x := range n {
			top := light(x, y)
			bottom := y+1 < n && light(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteByte(' ')
			}
		}
	}
	return b.String()
}
