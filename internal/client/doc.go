// Package client is a small Go client for the hivenet REST API, which
// follows the OpenStack Networking v2.0 wire conventions: request and
// response bodies are wrapped in the resource name ({"network": {...}},
// lists {"networks": [...]}), list filters are query parameters, the
// token travels in X-Auth-Token, and errors come back as
// {"NeutronError": {"type", "message", "detail"}} with the HTTP status.
//
// The client is generic over resources: a Resource names the JSON keys
// and the URL path, so adding routers or load balancers is one line in
// resource.go. Objects are passed as Object (map[string]any) with JSON
// numbers kept as json.Number, so whatever the server returns survives a
// round trip unchanged.
//
// Usage:
//
//	c, err := client.New(client.ConfigFromEnv(os.Getenv))
//	net, err := c.Create(ctx, client.Networks, client.Object{"name": "blue"})
//	ports, err := c.List(ctx, client.Ports, url.Values{"network_id": {id}})
//	id, err := c.Resolve(ctx, client.Networks, "blue") // name or ID
//
// Failures reported by the server are *Error values; errors.Is(err,
// ErrNotFound) holds for a 404 and for a name that matches nothing, and
// errors.Is(err, ErrAmbiguous) for a name that matches several objects.
package client
