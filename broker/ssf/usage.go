package ssf

import (
	"fmt"
	"net/http"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/wire/ssfwire"
)

// maxUsageBody bounds a usage report body.
const maxUsageBody = 256 << 10

func (t *Transmitter) handleUsage(w http.ResponseWriter, r *http.Request, receiver string) {
	body, problem := readBody(w, r, maxUsageBody)
	var rep *ssfwire.UsageReport
	if problem == "" {
		var err error
		if rep, err = ssfwire.ParseUsageReport(body); err != nil {
			problem = err.Error()
		}
	}
	if problem != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", problem)
		return
	}
	foreign := 0
	for _, u := range rep.Uses {
		err := t.b.ReportUses(r.Context(), broker.UseReport{Resource: receiver, GrantID: u.SID, Accepted: u.Accepted, Refused: u.Refused,
			FirstAccepted: millis(u.FirstAccepted), LastAccepted: millis(u.LastAccepted),
			FirstRefused: millis(u.FirstRefused), LastRefused: millis(u.LastRefused),
			Endpoints: u.Endpoints, Reasons: u.Reasons})
		switch broker.ErrorCode(err) {
		case "", broker.ENOTFOUND:
			// A sid writ never issued is a token it never minted: nothing to count.
		case broker.EFORBIDDEN:
			foreign++ // another resource's grant: not this server's to report
		default:
			t.internal(w, "record grant uses", err)
			return
		}
	}
	if foreign > 0 {
		writeError(w, http.StatusForbidden, "access_denied",
			fmt.Sprintf("%d of the reported grants are not grants for %s and were not counted; the others were", foreign, receiver))
		return
	}
	t.stats.usageReports.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func millis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
