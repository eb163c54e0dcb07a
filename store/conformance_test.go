package store_test

import (
	"testing"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
	"github.com/writhq/writ/store/storetest"
)

// TestConformance runs the contract every broker.Store keeps over the
// bbolt store; brokertest's in-memory Store runs the same suite.
func TestConformance(t *testing.T) {
	brokertest.RunConformance(t, func(tb testing.TB) broker.Store { return storetest.MustOpen(tb) })
}
