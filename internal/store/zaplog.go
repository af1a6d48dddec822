package store

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slogCore is a zapcore.Core that forwards etcd's zap records at or above
// its level to a slog.Logger. Once muted (during shutdown, whose errors
// are expected noise) it drops everything.
type slogCore struct {
	log    *slog.Logger
	level  zapcore.Level
	muted  *atomic.Bool
	fields []zapcore.Field
}

func newZapLogger(log *slog.Logger, level zapcore.Level, muted *atomic.Bool) *zap.Logger {
	return zap.New(&slogCore{log: log, level: level, muted: muted})
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= c.level && !c.muted.Load() }

func (c *slogCore) With(fs []zapcore.Field) zapcore.Core {
	n := *c
	n.fields = append(append([]zapcore.Field(nil), c.fields...), fs...)
	return &n
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	if c.muted.Load() {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fs {
		f.AddTo(enc)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields)+1)
	attrs = append(attrs, slog.String("etcd_msg", e.Message))
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	lvl := slog.LevelInfo
	switch {
	case e.Level >= zapcore.ErrorLevel:
		lvl = slog.LevelError
	case e.Level == zapcore.WarnLevel:
		lvl = slog.LevelWarn
	case e.Level == zapcore.DebugLevel:
		lvl = slog.LevelDebug
	}
	c.log.LogAttrs(context.Background(), lvl, "etcd log", attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }
