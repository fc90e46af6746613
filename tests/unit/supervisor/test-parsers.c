/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of what the supervisor parses and writes besides frames: control
 * requests and answers, config.json, the ready line, and the JSON-lines
 * logs (rotation).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/json.h"
#include "lib/core/util.h"
#include "lib/supervisor/ctlmsg.h"
#include "lib/supervisor/logfile.h"
#include "lib/readyline.h"
#include "lib/supervisor/sbconfig.h"

static int parse(const char *line, struct ctlmsg_request *req)
{
        return ctlmsg_parse(line, strlen(line), req);
}

static void test_ctl_requests(void **state)
{
        struct ctlmsg_request req;

        (void)state;
        assert_int_equal(parse("{\"op\": \"status\"}", &req), 0);
        assert_int_equal(req.op, CTLMSG_STATUS);
        assert_int_equal(parse(" {\"op\":\"stop\",\"timeout_ms\":2500,\"x\":[1]}\r", &req), 0);
        assert_int_equal(req.op, CTLMSG_STOP);
        assert_int_equal(req.timeout_ms, 2500);
        assert_int_equal(parse("{\"op\":\"stop\"}", &req), 0);
        assert_int_equal(req.timeout_ms, CTLMSG_DEFAULT_STOP_TIMEOUT_MS);
        assert_int_equal(parse("{\"op\":\"stop\",\"timeout_ms\":0}", &req), 0);
        assert_int_equal(req.timeout_ms, 0);
}

static void test_ctl_bad_requests(void **state)
{
        static const char *const bad_json[] = {
                "",
                "{",
                "{\"op\":\"status\"",
                "{op: status}",
                "[\"status\"]",
                "\"status\"",
                "{}",
                "{\"op\": 1}",
                "{\"op\":\"stop\",\"timeout_ms\":-1}",
                "{\"op\":\"stop\",\"timeout_ms\":\"5\"}",
                "{\"op\":\"stop\",\"timeout_ms\":1.5}",
                "{\"op\":\"stop\",\"timeout_ms\":99999999999}",
                "{\"op\":\"status\"} {}",
        };
        struct ctlmsg_request req = {.op = CTLMSG_STATUS, .timeout_ms = 77};
        _cleanup_free_ char *huge = malloc(CTLMSG_MAX_LINE + 2);

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(bad_json); i++) {
                assert_int_equal(parse(bad_json[i], &req), -EBADMSG);
                assert_int_equal(req.timeout_ms, 77); /* untouched on failure */
        }
        assert_int_equal(parse("{\"op\":\"reboot\"}", &req), -EOPNOTSUPP);
        assert_string_equal(ctlmsg_error_text(-EOPNOTSUPP), "unknown op");
        assert_string_equal(ctlmsg_error_text(-EBADMSG), "bad request");

        assert_non_null(huge);
        memset(huge, ' ', CTLMSG_MAX_LINE + 1);
        huge[CTLMSG_MAX_LINE + 1] = '\0';
        memcpy(huge, "{\"op\":\"status\"}", 15);
        assert_int_equal(ctlmsg_parse(huge, CTLMSG_MAX_LINE + 1, &req), -E2BIG);
        assert_string_equal(ctlmsg_error_text(-E2BIG), "request too long");
}

/* Parses an answer line (which must end with exactly one newline). */
static const struct json_value *answer(const char *line, struct json_doc **doc)
{
        const struct json_value *root;
        size_t len = strlen(line);

        assert_true(len > 1);
        assert_int_equal(line[len - 1], '\n');
        assert_null(memchr(line, '\n', len - 1));
        assert_int_equal(json_parse(line, len, doc, &root), 0);
        return root;
}

static void test_ctl_answers(void **state)
{
        struct ctlmsg_status s = {.status = "running",
                                  .pid = 10,
                                  .qemu_pid = 11,
                                  .started_at = 1700000000123,
                                  .clients = 2,
                                  .sessions = 3,
                                  .accel = "tcg"};
        _cleanup_free_ char *status = NULL, *stopped = NULL, *error = NULL;
        const struct json_value *root;
        struct json_doc *doc;

        (void)state;
        assert_int_equal(ctlmsg_format_status(&s, &status), 0);
        root = answer(status, &doc);
        assert_true(json_bool(json_get(root, "ok"), false));
        assert_string_equal(json_string(json_get(root, "status"), ""), "running");
        assert_int_equal(json_int(json_get(root, "pid"), 0, 1 << 30, 0), 10);
        assert_int_equal(json_int(json_get(root, "qemu_pid"), 0, 1 << 30, 0), 11);
        assert_int_equal(json_int(json_get(root, "started_at"), 0, INT64_MAX, 0), 1700000000123);
        assert_int_equal(json_int(json_get(root, "clients"), 0, 100, 0), 2);
        assert_int_equal(json_int(json_get(root, "sessions"), 0, 100, 0), 3);
        assert_string_equal(json_string(json_get(root, "accel"), ""), "tcg");
        json_doc_free(doc);

        assert_int_equal(ctlmsg_format_stopped("killed", &stopped), 0);
        root = answer(stopped, &doc);
        assert_true(json_bool(json_get(root, "ok"), false));
        assert_string_equal(json_string(json_get(root, "reason"), ""), "killed");
        json_doc_free(doc);

        assert_int_equal(ctlmsg_format_error("unknown op", &error), 0);
        root = answer(error, &doc);
        assert_false(json_bool(json_get(root, "ok"), true));
        assert_string_equal(json_string(json_get(root, "error"), ""), "unknown op");
        json_doc_free(doc);
}

static int config(const char *text, struct sbconfig *c, char *msg)
{
        msg[0] = '\0';
        return sbconfig_parse(text, strlen(text), c, msg, 256);
}

static void test_config(void **state)
{
        static const char full[] =
                "{\"version\": 1, \"name\": \"web\", \"image\": \"base\",\n"
                " \"base_disk\": \"/abs/base.ext4\", \"upper_disk\": \"/abs/upper.ext4\",\n"
                " \"memory_mib\": 256, \"cpus\": 2, \"accel\": \"tcg\", \"boot_timeout_ms\": 5,\n"
                " \"idle_timeout_ms\": 6, \"max_duration_ms\": 7, \"ephemeral\": true,\n"
                " \"labels\": {\"team\": \"a\"}, \"root_disk_bytes\": 4096, \"future\": [null],\n"
                " \"network\": {\"enabled\": true, \"profile\": \"public,host\",\n"
                "  \"default_egress\": \"deny\", \"rules\": [\"allow@10.0.0.0/8:tcp:5432\"],\n"
                "  \"dns\": [\"1.1.1.1\", \"[::1]:5353\"], \"ports\": [\"8080:80\"],\n"
                "  \"max_connections\": 32}}";
        static const char minimal[] = "{\"version\": 1, \"name\": \"x\", \"image\": \"base\", "
                                      "\"base_disk\": \"/b\", \"upper_disk\": null, "
                                      "\"accel\": null}";
        struct sbconfig c;
        char msg[256];

        (void)state;
        assert_int_equal(config(full, &c, msg), 0);
        assert_string_equal(c.name, "web");
        assert_string_equal(c.image, "base");
        assert_string_equal(c.base_disk, "/abs/base.ext4");
        assert_string_equal(c.upper_disk, "/abs/upper.ext4");
        assert_string_equal(c.accel, "tcg");
        assert_int_equal(c.memory_mib, 256);
        assert_int_equal(c.cpus, 2);
        assert_int_equal(c.boot_timeout_ms, 5);
        assert_int_equal(c.idle_timeout_ms, 6);
        assert_int_equal(c.max_duration_ms, 7);
        assert_true(c.ephemeral);
        assert_true(c.net.enabled);
        assert_int_equal(c.net.policy.default_egress, NET_DENY);
        assert_true(c.net.policy.n_rules >= 1); /* the profile's rules, then ours */
        assert_int_equal(c.net.policy.rules[c.net.policy.n_rules - 1].port_lo, 5432);
        assert_int_equal(c.net.n_dns, 2);
        assert_int_equal(ntohs(c.net.dns[1].sin6_port), 5353);
        assert_int_equal(c.net.n_ports, 1);
        assert_int_equal(c.net.ports[0].host_port, 8080);
        assert_int_equal(c.net.ports[0].guest_port, 80);
        assert_int_equal(c.net.max_connections, 32);
        sbconfig_clear(&c);

        assert_int_equal(config(minimal, &c, msg), 0);
        assert_true(c.net.enabled); /* no "network": the public profile */
        assert_int_equal(c.net.n_ports, 0);
        assert_null(c.upper_disk);
        assert_null(c.accel);
        assert_int_equal(c.memory_mib, SBCONFIG_DEF_MEMORY);
        assert_int_equal(c.cpus, 1);
        assert_int_equal(c.idle_timeout_ms, 0);
        assert_false(c.ephemeral);
        sbconfig_clear(&c);
}

static void test_config_bad(void **state)
{
        static const struct {
                const char *text;
                const char *words; /* in the message */
        } cases[] = {
                {"nonsense", "not valid JSON"},
                {"[]", "not a JSON object"},
                {"{\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\"}", "version"},
                {"{\"version\":2,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\"}",
                 "newer than this msb-sandbox"},
                {"{\"version\":1,\"image\":\"i\",\"base_disk\":\"/b\"}", "name"},
                {"{\"version\":1,\"name\":\"\",\"image\":\"i\",\"base_disk\":\"/b\"}", "name"},
                {"{\"version\":1,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"rel\"}",
                 "base_disk must be an absolute path"},
                {"{\"version\":1,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\","
                 "\"upper_disk\":3}",
                 "upper_disk"},
                {"{\"version\":1,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\","
                 "\"memory_mib\":1}",
                 "memory_mib must be an integer from 64"},
                {"{\"version\":1,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\","
                 "\"cpus\":0}",
                 "cpus"},
                {"{\"version\":1,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\","
                 "\"idle_timeout_ms\":-5}",
                 "idle_timeout_ms"},
                {"{\"version\":1,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\","
                 "\"ephemeral\":1}",
                 "ephemeral must be true or false"},
                {"{\"version\":1,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\","
                 "\"accel\":\"hvf\"}",
                 "accel must be auto, kvm or tcg"},
                {"{\"version\":1,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\","
                 "\"network\":{\"profile\":\"everything\"}}",
                 "network.profile"},
                {"{\"version\":1,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\","
                 "\"network\":{\"rules\":[\"maybe@host\"]}}",
                 "network.rules[0]"},
                {"{\"version\":1,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\","
                 "\"network\":{\"ports\":[\"1:2:3:4\"]}}",
                 "network.ports[0]"},
                {"{\"version\":1,\"name\":\"x\",\"image\":\"i\",\"base_disk\":\"/b\","
                 "\"network\":{\"default_egress\":\"maybe\"}}",
                 "default_egress"},
        };
        struct sbconfig c = {0};
        char msg[256];

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                assert_int_equal(config(cases[i].text, &c, msg), -EBADMSG);
                if (!strstr(msg, cases[i].words))
                        fail_msg("case %zu: \"%s\" lacks \"%s\"", i, msg, cases[i].words);
        }
}

static void test_ready_line(void **state)
{
        struct readyline ok = {.ok = true,
                               .accel = "tcg",
                               .notice = "using TCG: no vmx/svm",
                               .start_ns = 1234567890,
                               .guest_boot_ns = 11,
                               .guest_ready_ns = 22,
                               .pid = 100,
                               .qemu_pid = 101};
        struct readyline bad = {.ok = false, .kind = READY_BOOT_TIMEOUT, .message = "no answer"};
        _cleanup_free_ char *line1 = NULL, *line2 = NULL, *line3 = NULL;
        struct readyline got;

        (void)state;
        assert_int_equal(readyline_format(&ok, &line1), 0);
        assert_int_equal(line1[strlen(line1) - 1], '\n');
        assert_int_equal(readyline_parse(line1, strlen(line1), &got), 0);
        assert_true(got.ok);
        assert_string_equal(got.accel, "tcg");
        assert_string_equal(got.notice, ok.notice);
        assert_int_equal(got.start_ns, 1234567890);
        assert_int_equal(got.guest_boot_ns, 11);
        assert_int_equal(got.guest_ready_ns, 22);
        assert_int_equal(got.pid, 100);
        assert_int_equal(got.qemu_pid, 101);

        assert_int_equal(readyline_format(&bad, &line2), 0);
        assert_int_equal(readyline_parse(line2, strlen(line2), &got), 0);
        assert_false(got.ok);
        assert_string_equal(got.kind, "boot_timeout");
        assert_string_equal(got.message, "no answer");

        /* escapes would make this message 3 KiB longer than the line allows */
        memset(bad.message, '\x01', sizeof(bad.message) - 1);
        assert_int_equal(readyline_format(&bad, &line3), 0);
        assert_true(strlen(line3) <= READYLINE_MAX);
        assert_int_equal(readyline_parse(line3, strlen(line3), &got), 0);
        assert_false(got.ok);

        assert_int_equal(readyline_parse("{\"ok\": 1}", 9, &got), -EBADMSG);
        assert_int_equal(readyline_parse("{\"ok\": false}", 13, &got), -EBADMSG);
        assert_int_equal(readyline_parse("garbage", 7, &got), -EBADMSG);
}

static void test_logfile_rotation(void **state)
{
        char dir[] = "/tmp/msb-test-logfile-XXXXXX";
        _cleanup_free_ char *path = NULL, *old = NULL, *text = NULL;
        struct logfile *log = NULL;
        struct stat st;
        size_t len;

        (void)state;
        assert_non_null(mkdtemp(dir));
        path = strdup_printf("%s/exec.log", dir);
        old = strdup_printf("%s/exec.log.1", dir);
        assert_int_equal(logfile_open(path, 300, &log), 0);
        for (int i = 0; i < 10; i++) {
                struct json_writer w;
                json_writer_init(&w);
                logfile_json_begin(&w, "stdout");
                json_kv_int(&w, "n", i);
                assert_int_equal(logfile_json_commit(log, &w), 0);
                assert_int_equal(stat(path, &st), 0);
                assert_true(st.st_size <= 300);
        }
        logfile_free(log);
        /* both files hold whole lines; the newest is in the current file */
        assert_int_equal(stat(old, &st), 0);
        assert_int_equal(read_file(path, 4096, &text, &len), 0);
        assert_non_null(strstr(text, "\"n\":9"));
        assert_int_equal(text[len - 1], '\n');
        for (char *line = text; *line;) {
                char *nl = strchr(line, '\n');
                struct json_doc *doc;
                const struct json_value *root;
                assert_non_null(nl);
                assert_int_equal(json_parse(line, (size_t)(nl - line), &doc, &root), 0);
                assert_string_equal(json_string(json_get(root, "source"), ""), "stdout");
                assert_int_equal(strlen(json_string(json_get(root, "ts"), "")), 24);
                json_doc_free(doc);
                line = nl + 1;
        }
        assert_int_equal(rm_rf(dir), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ctl_requests),     cmocka_unit_test(test_ctl_bad_requests),
                cmocka_unit_test(test_ctl_answers),      cmocka_unit_test(test_config),
                cmocka_unit_test(test_config_bad),       cmocka_unit_test(test_ready_line),
                cmocka_unit_test(test_logfile_rotation),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
