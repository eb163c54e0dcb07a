package brokertest_test

import (
	"testing"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
)

func TestConformance(t *testing.T) {
	brokertest.RunConformance(t, func(testing.TB) broker.Store { return brokertest.NewStore() })
}
