/*
 * A SageMaker-contract model server for Strait's container tests, linked statically so that the test image is just
 * this file in an otherwise empty root file system (no registry is reachable in CI).
 *
 *   serve                      (the container's command) listens on 0.0.0.0:$SAGEMAKER_BIND_TO_PORT (default 8080)
 *   GET  /ping                 200
 *   POST /invocations          200, {"model": <first line of /opt/ml/model/model.txt>, "body": <the body>}
 *
 * One process per connection (keep-alive honoured), SIGTERM ends it at once.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static char model[256] = "none";

static int send_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n <= 0) return -1;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

static void serve_connection(int fd) {
    static char buffer[1 << 20];
    size_t used = 0;
    for (;;) {
        char *end = NULL;
        while ((end = memmem(buffer, used, "\r\n\r\n", 4)) == NULL) {
            if (used == sizeof buffer) return;
            ssize_t n = read(fd, buffer + used, sizeof buffer - used);
            if (n <= 0) return;
            used += (size_t)n;
        }
        size_t head = (size_t)(end - buffer) + 4;
        size_t length = 0;
        int keep_alive = 1;
        for (char *line = strstr(buffer, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
            if (strncasecmp(line + 2, "content-length:", 15) == 0) length = strtoul(line + 17, NULL, 10);
            if (strncasecmp(line + 2, "connection: close", 17) == 0) keep_alive = 0;
        }
        if (head + length > sizeof buffer) return;
        while (used < head + length) {
            ssize_t n = read(fd, buffer + used, sizeof buffer - used);
            if (n <= 0) return;
            used += (size_t)n;
        }
        static char response[(1 << 20) + 512];
        int ping = strncmp(buffer, "GET /ping ", 10) == 0;
        int invoke = strncmp(buffer, "POST /invocations ", 18) == 0;
        char body[(1 << 20) + 300];
        int body_size = 0;
        if (invoke) {
            body_size = snprintf(body, 300, "{\"model\": \"%s\", \"body\": \"", model);
            memcpy(body + body_size, buffer + head, length);
            body_size += (int)length;
            body_size += snprintf(body + body_size, 8, "\"}");
        }
        int status = ping || invoke ? 200 : 404;
        int size = snprintf(response, 512, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n",
                            status, status == 200 ? "OK" : "Not Found", body_size,
                            keep_alive ? "" : "Connection: close\r\n");
        memcpy(response + size, body, (size_t)body_size);
        if (send_all(fd, response, (size_t)(size + body_size)) != 0 || !keep_alive) return;
        memmove(buffer, buffer + head + length, used - head - length);
        used -= head + length;
    }
}

int main(int argc, char **argv) {
    /* Started as `serve` (the image has no entrypoint, so the command is the program) or as `PROGRAM serve`. */
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (strcmp(name, "serve") != 0 && (argc < 2 || strcmp(argv[1], "serve") != 0)) {
        fprintf(stderr, "usage: serve\n");
        return 2;
    }
    signal(SIGCHLD, SIG_IGN);
    FILE *file = fopen("/opt/ml/model/model.txt", "r");
    if (file) {
        if (fgets(model, sizeof model, file)) model[strcspn(model, "\r\n\"\\")] = 0;
        fclose(file);
    }
    const char *port_text = getenv("SAGEMAKER_BIND_TO_PORT");
    int port = port_text ? atoi(port_text) : 8080;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 64) != 0) {
        perror("listen");
        return 1;
    }
    printf("test model server (model %s) listening on port %d\n", model, port);
    fflush(stdout);
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fork() == 0) {
            close(listener);
            serve_connection(fd);
            _exit(0);
        }
        close(fd);
    }
}
