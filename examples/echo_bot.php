<?php
// Webhook echo bot for component-http (PHP standard library only): run `php -S 127.0.0.1:8080 examples/echo_bot.php` (or `php examples/echo_bot.php [PORT]`) and point `post_url` at http://127.0.0.1:8080/.
//
// component-http POSTs each stanza as a JSON object ({"to", "from", "kind", "stanza",
// "body"?}); a 200 reply with Content-Type application/json becomes the answer stanza,
// a 204 means "send nothing". The same file works behind any PHP web server.

if (PHP_SAPI === 'cli') {
    // Started as a plain script: serve this file with PHP's built-in web server.
    $port = (int) ($argv[1] ?? getenv('PORT') ?: 8080);
    $host = getenv('HOST') ?: '127.0.0.1';
    $cmd = [PHP_BINARY, '-S', "$host:$port", __FILE__];
    if (function_exists('pcntl_exec')) {
        pcntl_exec($cmd[0], array_slice($cmd, 1));
    }
    passthru(implode(' ', array_map('escapeshellarg', $cmd)), $status);
    exit($status);
}

function reply(int $status, ?array $obj = null): void
{
    http_response_code($status);
    if ($obj !== null) {
        header('Content-Type: application/json');
        echo json_encode($obj, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
    } else {
        ini_set('default_mimetype', ''); // no Content-Type on an empty reply
    }
}

if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
    header('Allow: POST');
    reply(405, ['error' => 'POST stanzas here']);
    return;
}

$event = json_decode(file_get_contents('php://input'), true);
if (json_last_error() !== JSON_ERROR_NONE) {
    reply(400, ['error' => 'request body is not JSON']);
} elseif (is_array($event) && ($event['kind'] ?? 'message') === 'message' && array_key_exists('body', $event)) {
    $body = is_scalar($event['body']) ? (string) $event['body'] : json_encode($event['body']);
    reply(200, ['body' => "Did you say $body?"]);
} else {
    reply(204);
}
