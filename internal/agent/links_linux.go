package agent

import (
	"context"
	"log/slog"

	"github.com/vishvananda/netlink"
)

// subscribeLinks returns a channel that receives a value whenever a link
// appears, changes or goes away in the agent's network namespace. Events
// are coalesced: the receiver rescans, so one pending signal is enough.
// If the subscription fails the channel never fires and the periodic
// resync covers for it.
func subscribeLinks(ctx context.Context, log *slog.Logger) <-chan struct{} {
	out := make(chan struct{}, 1)
	updates := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribe(updates, ctx.Done()); err != nil {
		log.Warn("link subscription failed, relying on periodic rescans", "err", err)
		return out
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-updates:
				if !ok {
					return
				}
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}
