package admin

import (
	"context"
	"log/slog"
	"net/http"
)

// kpiRoutes serves GET /api/kpis, the latest retention KPI report as JSON;
// nothing when kpis is nil.
func kpiRoutes(mux *http.ServeMux, kpis func(context.Context) (any, error), log *slog.Logger) {
	if kpis == nil {
		return
	}
	mux.HandleFunc("GET /api/kpis", func(w http.ResponseWriter, r *http.Request) {
		rep, err := kpis(r.Context())
		if err != nil {
			log.Error("compute KPIs", "err", err)
			jsonError(w, http.StatusInternalServerError, "could not compute the KPIs")
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
}
