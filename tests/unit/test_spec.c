/* test_spec.c - the lasso spec parser: good specs, every kind of bad one
 * (each with its error code and field), and agreement with the schema. */
#include "json_check.h"
#include "spec.h"
#include "tap.h"
#include "vv/err.h"

#include <string.h>

/* Parses a lasso spec: *s receives the lasso part of the parsed job. */
static int parse(const char *json, lasso_spec *s, char *field)
{
    job_spec j;
    int rc = spec_parse_job_text(json, strlen(json), &j, field, 256);
    *s = j.lasso;
    memset(&j.lasso, 0, sizeof j.lasso);
    spec_free_job(&j);
    return rc;
}

/* The schema file lists exactly the fields the parser accepts. */
static void check_schema(const char *file, const char *const *fields)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", VV_SCHEMA_DIR, file);
    FILE *f = fopen(path, "rb");
    static char buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    cJSON *schema = cJSON_Parse(buf);
    cJSON *props = cJSON_GetObjectItem(schema, "properties");
    int nprops = cJSON_GetArraySize(props), nfields = 0, all = props != NULL;
    for (const char *const *p = fields; *p; p++, nfields++)
        if (!cJSON_GetObjectItem(props, *p)) {
            all = 0;
            printf("# field %s missing from %s\n", *p, file);
        }
    CHECKF(all && nprops == nfields, "%s: schema properties (%d) = parser fields (%d)", file,
           nprops, nfields);
    cJSON_Delete(schema);
}

int main(void)
{
    lasso_spec s;
    char field[256];
    int rc = parse("{\"kind\":\"lasso\",\"phi\":\"a.npy\",\"psi\":{\"path\":\"b.safetensors\","
                   "\"tensor\":\"y\"},\"lambda_paper\":0.5,\"solver\":\"adam_prox\",\"mu\":0.07,"
                   "\"init\":\"w.npy\",\"bias\":[1,2],\"tol\":1e-8,\"max_iter\":10,"
                   "\"max_seconds\":5,\"refit\":true,\"name\":\"x\"}",
                   &s, field);
    CHECK(rc == 0, "a full spec parses");
    CHECK(rc == 0 && !strcmp(s.phi.path, "a.npy") && !strcmp(s.psi.tensor, "y") &&
              s.lam_kind == LAM_PAPER && s.lam_value == 0.5 && s.solver == VV_SOLVER_ADAM_PROX &&
              s.mu == 0.07 && s.init == VV_INIT_GIVEN && !strcmp(s.init_file.path, "w.npy") &&
              s.nbias == 2 && s.bias[1] == 2 && s.tol == 1e-8 && s.max_iter == 10 && s.refit,
          "its fields land where they belong");
    spec_free_lasso(&s);
    rc = parse("{\"kind\":\"lasso\",\"generate\":{\"n\":100,\"k\":8,\"d\":2,\"seed\":3},"
               "\"path\":{\"n\":5,\"min_ratio\":0.1}}",
               &s, field);
    CHECK(rc == 0 && s.generate && s.gen_k == 8 && s.path_kind == PATH_GRID && s.path_n == 5 &&
              s.path_min_ratio == 0.1,
          "a generated problem with a path grid parses");
    spec_free_lasso(&s);
    /* device: a name this process has (the CPU here, and auto), else 400 at /device. */
    const char *devs[] = {"cpu", "auto", "cuda:0", "sim:3", "gpu", "cuda:x", "cuda:64", "7"};
    int dev_ok[] = {1, 1, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) {
        char text[160];
        snprintf(text, sizeof text,
                 i == 7 ? "{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"device\":%s}"
                        : "{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"device\":\"%s\"}",
                 devs[i]);
        rc = parse(text, &s, field);
        const char *want = i < 2 ? "" : i == 7 ? "INVALID_TYPE" : i < 4 ? "not available" : "unknown device";
        CHECKF(dev_ok[i] ? rc == 0 && !strcmp(s.device, i == 0 ? "cpu" : "")
                         : rc < 0 && !strcmp(field, "/device") &&
                               (i == 7 ? rc == VV_ETYPE : strstr(vv_err_detail(), want) != NULL),
               "device %s: %s", devs[i], dev_ok[i] ? "accepted" : vv_err_detail());
        if (rc == 0)
            spec_free_lasso(&s);
    }
    rc = parse("{\"kind\":\"lasso\",\"phi\":[\"a\",{\"path\":\"b\",\"tensor\":\"t\"}],"
               "\"psi\":[\"c\",\"d\"],\"lambda\":1,\"save_stats\":true}",
               &s, field);
    CHECK(rc == 0 && s.nphi_shards == 2 && s.npsi_shards == 2 && !s.phi.path &&
              !strcmp(s.phi_shards[1].path, "b") && !strcmp(s.phi_shards[1].tensor, "t") &&
              !strcmp(s.psi_shards[0].path, "c") && s.save_stats,
          "phi and psi as lists of shards, and save_stats, parse");
    spec_free_lasso(&s);
    rc = parse("{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"target_active\":5}", &s, field);
    CHECK(rc == 0 && s.target_active == 5 && s.tol == 1e-6 && s.solver == VV_SOLVER_AUTO,
          "target_active parses; defaults are documented ones");
    spec_free_lasso(&s);

    struct {
        const char *json;
        int err;
        const char *field;
    } bad[] = {
        {"{\"kind\":\"lasso\",", VV_EJSON, ""},
        {"[1,2]", VV_ETYPE, ""},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1} x", VV_EJSON, ""},
        {"{\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1}", VV_EMISSING, "/kind"},
        {"{\"kind\":\"prune\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1}", VV_EINVAL, "/kind"},
        {"{\"kind\":\"lasso\",\"psi\":\"b\",\"lambda\":1}", VV_EMISSING, "/phi"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"lambda\":1}", VV_EMISSING, "/psi"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\"}", VV_EMISSING, "/lambda"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":-1}", VV_EINVAL, "/lambda"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":0}", VV_EINVAL, "/lambda"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":\"0.1\"}", VV_ETYPE,
         "/lambda"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1e999}", VV_EINVAL, "/lambda"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"lambda_ratio\":0.1}",
         VV_EINVAL, "/lambda_ratio"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda_ratio\":1.5}", VV_EINVAL,
         "/lambda_ratio"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"lamda\":2}", VV_EUNKNOWN,
         "/lamda"},
        {"{\"kind\":\"lasso\",\"phi\":3,\"psi\":\"b\",\"lambda\":1}", VV_ETYPE, "/phi"},
        {"{\"kind\":\"lasso\",\"phi\":\"\",\"psi\":\"b\",\"lambda\":1}", VV_EINVAL, "/phi"},
        {"{\"kind\":\"lasso\",\"phi\":{\"tensor\":\"x\"},\"psi\":\"b\",\"lambda\":1}", VV_EMISSING,
         "/phi/path"},
        /* Shards: both lists, of the same length, of files. */
        {"{\"kind\":\"lasso\",\"phi\":[\"a\",\"b\"],\"psi\":\"c\",\"lambda\":1}", VV_EINVAL,
         "/psi"},
        {"{\"kind\":\"lasso\",\"phi\":[\"a\",\"b\"],\"psi\":[\"c\"],\"lambda\":1}", VV_EINVAL,
         "/psi"},
        {"{\"kind\":\"lasso\",\"phi\":[],\"psi\":[],\"lambda\":1}", VV_EINVAL, "/phi"},
        {"{\"kind\":\"lasso\",\"phi\":[\"a\",3],\"psi\":[\"c\",\"d\"],\"lambda\":1}", VV_ETYPE,
         "/phi/1"},
        {"{\"kind\":\"lasso\",\"phi\":[\"a\"],\"psi\":[\"c\"],\"lambda\":1,\"save_stats\":1}",
         VV_ETYPE, "/save_stats"},
        {"{\"kind\":\"lasso\",\"phi\":{\"path\":\"a\",\"dtype\":\"x\"},\"psi\":\"b\",\"lambda\":1}",
         VV_EUNKNOWN, "/phi/dtype"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"solver\":\"newton\"}",
         VV_EINVAL, "/solver"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"tol\":-1}", VV_EINVAL,
         "/tol"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"max_iter\":1.5}", VV_ETYPE,
         "/max_iter"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"max_iter\":0}", VV_EINVAL,
         "/max_iter"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"mu\":0.1}", VV_EINVAL,
         "/mu"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"seed\":3}", VV_EINVAL,
         "/seed"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"refit\":1}", VV_ETYPE,
         "/refit"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"bias\":[1,\"x\"]}",
         VV_ETYPE, "/bias/1"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"init\":5}", VV_ETYPE,
         "/init"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"path\":{}}", VV_EMISSING, "/path"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"path\":{\"lambdas\":[]}}", VV_EINVAL,
         "/path/lambdas"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"path\":{\"lambdas\":[1,-2]}}",
         VV_EINVAL, "/path/lambdas/1"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"path\":{\"n\":3,\"lambdas\":[1]}}",
         VV_EINVAL, "/path/lambdas"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"path\":{\"lambdas\":[1],\"min_ratio\":"
         "0.1}}",
         VV_EINVAL, "/path/min_ratio"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"target_active\":0}", VV_EINVAL,
         "/target_active"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"target_active\":3,\"lambda\":1}",
         VV_EINVAL, "/target_active"},
        {"{\"kind\":\"lasso\",\"generate\":{\"n\":10,\"k\":3},\"lambda\":1}", VV_EMISSING,
         "/generate/d"},
        {"{\"kind\":\"lasso\",\"generate\":{\"n\":10,\"k\":3,\"d\":1},\"phi\":\"a\",\"lambda\":1}",
         VV_EINVAL, "/phi"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1,\"device\":\"cuda:7\"}",
         VV_EINVAL, "/device"},
        {"{\"kind\":\"lasso\",\"phi\":\"a\",\"phi\":\"c\",\"psi\":\"b\",\"lambda\":1}", VV_EINVAL,
         "/phi"},
    };
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        rc = parse(bad[i].json, &s, field);
        CHECKF(rc == bad[i].err && !strcmp(field, bad[i].field),
               "bad spec %u: %s at '%s' (got %s at '%s': %s)", i, vv_err_name(bad[i].err),
               bad[i].field, vv_err_name(rc), field, vv_err_detail());
        CHECKF(vv_err_http_status(rc) == 400, "bad spec %u: a 400", i);
        spec_free_lasso(&s);
    }

    /* Interpolate specs. */
    job_spec js;
    rc = spec_parse_job_text("{\"kind\":\"interpolate\",\"generate\":{\"kind\":\"lowrank\","
                             "\"n\":20,\"k\":200,\"rank\":5,\"seed\":2},\"tol\":1e-10}",
                             strlen("{\"kind\":\"interpolate\",\"generate\":{\"kind\":\"lowrank\","
                                    "\"n\":20,\"k\":200,\"rank\":5,\"seed\":2},\"tol\":1e-10}"),
                             &js, field, sizeof field);
    CHECK(rc == 0 && js.kind == JOB_INTERPOLATE && js.interp.gen_lowrank && js.interp.gen_rank == 5 &&
              js.interp.tol == 1e-10 && js.interp.max_iter == 100,
          "an interpolate spec with a low-rank instance parses");
    spec_free_job(&js);
    struct {
        const char *json;
        int err;
        const char *field;
    } ibad[] = {
        {"{\"kind\":\"interpolate\"}", VV_EMISSING, "/phi"},
        {"{\"kind\":\"interpolate\",\"phi\":\"a\",\"psi\":\"b\",\"lambda\":1}", VV_EUNKNOWN,
         "/lambda"},
        {"{\"kind\":\"interpolate\",\"generate\":{\"n\":3,\"k\":7}}", VV_EMISSING,
         "/generate/d"},
        {"{\"kind\":\"interpolate\",\"generate\":{\"kind\":\"lowrank\",\"n\":3,\"k\":7,\"d\":2,"
         "\"rank\":2}}",
         VV_EINVAL, "/generate/d"},
        {"{\"kind\":\"interpolate\",\"generate\":{\"n\":10,\"k\":60,\"d\":2},\"brute_force\":true}",
         VV_EINVAL, "/brute_force"},
        {"{\"kind\":\"interpolate\",\"phi\":\"a\",\"psi\":\"b\",\"budget\":10}", VV_EINVAL,
         "/budget"},
        {"{\"kind\":\"interpolate\",\"phi\":\"a\",\"psi\":\"b\",\"tol\":0}", VV_EINVAL, "/tol"},
        {"{\"kind\":\"training\",\"phi\":\"a\"}", VV_EINVAL, "/kind"},
    };
    for (unsigned i = 0; i < sizeof ibad / sizeof *ibad; i++) {
        rc = spec_parse_job_text(ibad[i].json, strlen(ibad[i].json), &js, field, sizeof field);
        CHECKF(rc == ibad[i].err && !strcmp(field, ibad[i].field),
               "bad interpolate spec %u: %s at '%s' (got %s at '%s': %s)", i,
               vv_err_name(ibad[i].err), ibad[i].field, vv_err_name(rc), field, vv_err_detail());
        spec_free_job(&js);
    }

    /* The schemas list exactly the fields the parsers accept. */
    check_schema("lasso.schema.json", spec_lasso_fields);
    check_schema("interpolate.schema.json", spec_interp_fields);
    check_schema("bounds_study.schema.json", spec_bounds_fields);
    check_schema("neuron_sharing.schema.json", spec_sharing_fields);
    check_schema("compress.schema.json", spec_compress_fields);
    check_schema("train.schema.json", spec_train_fields);
    FILE *f = fopen(VV_SCHEMA_DIR "/lasso.schema.json", "rb");
    static char buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    cJSON *schema = cJSON_Parse(buf);
    cJSON *props = cJSON_GetObjectItem(schema, "properties");
    cJSON *solver = cJSON_GetObjectItem(cJSON_GetObjectItem(props, "solver"), "enum"), *e;
    int solvers_ok = cJSON_GetArraySize(solver) == 4;
    cJSON_ArrayForEach(e, solver) solvers_ok &= vv_solver_from_name(e->valuestring) >= 0;
    CHECK(solvers_ok, "schema solver names are the library's");
    cJSON_Delete(schema);
    const char *nj = "{\"kind\":\"neuron_sharing\",\"mode\":\"adam\"}";
    rc = spec_parse_job_text(nj, strlen(nj), &js, field, sizeof field);
    CHECK(rc == VV_EINVAL && !strcmp(field, "/mode"), "neuron_sharing: an unknown mode");
    spec_free_job(&js);
    nj = "{\"kind\":\"neuron_sharing\",\"lr\":0}";
    rc = spec_parse_job_text(nj, strlen(nj), &js, field, sizeof field);
    CHECK(rc == VV_EINVAL && !strcmp(field, "/lr"), "neuron_sharing: lr must be positive");
    spec_free_job(&js);
    nj = "{\"kind\":\"neuron_sharing\",\"steps\":1000,\"mode\":\"none\"}";
    rc = spec_parse_job_text(nj, strlen(nj), &js, field, sizeof field);
    CHECK(rc == 0 && js.kind == JOB_SHARING && js.sharing.steps == 1000 && js.sharing.width == 100 &&
              js.sharing.lr == 0.2 && js.sharing.reg == 5e-5 && js.sharing.n == 50,
          "neuron_sharing: the paper's settings by default");
    spec_free_job(&js);
    const char *bj = "{\"kind\":\"bounds_study\",\"figure\":\"fig4\",\"d\":3}";
    rc = spec_parse_job_text(bj, strlen(bj), &js, field, sizeof field);
    CHECK(rc == VV_EINVAL && !strcmp(field, "/d"), "bounds_study: d does not apply to fig4");
    spec_free_job(&js);
    bj = "{\"kind\":\"bounds_study\",\"figure\":\"fig6\"}";
    rc = spec_parse_job_text(bj, strlen(bj), &js, field, sizeof field);
    CHECK(rc == VV_EINVAL && !strcmp(field, "/figure"), "bounds_study: an unknown figure");
    spec_free_job(&js);
    bj = "{\"kind\":\"bounds_study\",\"figure\":\"fig3\",\"values\":[10,20],\"instances\":5}";
    rc = spec_parse_job_text(bj, strlen(bj), &js, field, sizeof field);
    CHECK(rc == 0 && js.kind == JOB_BOUNDS && js.bounds.nvalues == 2 && js.bounds.k == 500 &&
              js.bounds.d == 10 && js.bounds.instances == 5,
          "bounds_study: the paper's defaults with overrides");
    spec_free_job(&js);

    /* json_check_tree: UTF-8 and repeated keys at any depth. */
    struct {
        const char *json;
        int rc;
        const char *field;
        const char *what;
    } jc[] = {
        {"{\"a\":{\"b\":1,\"b\":2}}", VV_EINVAL, "/a/b", "a key repeated in a nested object"},
        {"{\"a\":[{\"x\":1},{\"y\":1,\"z\":0,\"y\":2}]}", VV_EINVAL, "/a/1/y",
         "a key repeated in an object inside an array"},
        {"{\"a/b~c\":{\"k\":1,\"k\":2}}", VV_EINVAL, "/a~1b~0c/k",
         "the pointer escapes '/' as ~1 and '~' as ~0"},
        {"{\"k\":1,\"k\":2}", VV_EINVAL, "/k", "a key repeated at the top level"},
        {"{\"name\":\"x\xff\"}", VV_EJSON, "/name", "invalid UTF-8 in a value"},
        {"{\"a\":{\"b\xff"
         "c\":1}}",
         VV_EJSON, "/a/b\\xffc", "invalid UTF-8 in a key, escaped in the pointer"},
        {"{\"a\":[1,\"\x80\"]}", VV_EJSON, "/a/1", "a stray continuation byte"},
        {"{\"s\":\"\xc0\xaf\"}", VV_EJSON, "/s", "an overlong 2-byte form (C0 AF)"},
        {"{\"s\":\"\xe0\x80\xaf\"}", VV_EJSON, "/s", "an overlong 3-byte form (E0 80 AF)"},
        {"{\"s\":\"\xf0\x80\x80\xaf\"}", VV_EJSON, "/s", "an overlong 4-byte form"},
        {"{\"s\":\"\xed\xa0\x80\"}", VV_EJSON, "/s", "a surrogate (ED A0 80)"},
        {"{\"s\":\"\xed\xbf\xbf\"}", VV_EJSON, "/s", "a surrogate (ED BF BF)"},
        {"{\"s\":\"\xf4\x90\x80\x80\"}", VV_EJSON, "/s", "a code point above U+10FFFF"},
        {"{\"s\":\"\xf5\x80\x80\x80\"}", VV_EJSON, "/s", "a byte F5"},
        {"{\"s\":\"ab\xe2\x82\"}", VV_EJSON, "/s", "a sequence cut by the string's end"},
        {"{\"s\":\"\xe2\x82"
         "a\"}",
         VV_EJSON, "/s", "a sequence cut by an ASCII byte"},
        {"\"\xff\"", VV_EJSON, "", "a top-level string"},
        {"{\"s\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xce\xbb \xed\x9f\xbf \xee\x80\x80 "
         "\xf4\x8f\xbf\xbf\",\"\xce\xbb\":[\"\xc3\xa9\",{\"\xe2\x82\xac\":1}]}",
         0, "", "valid multi-byte text (up to U+10FFFF, around the surrogates) passes"},
        {"{\"a\":{\"b\":1},\"c\":{\"b\":2},\"d\":[{\"b\":3},{\"b\":4}]}", 0, "",
         "the same key in different objects passes"},
    };
    for (unsigned i = 0; i < sizeof jc / sizeof *jc; i++) {
        cJSON *j = cJSON_Parse(jc[i].json);
        strcpy(field, "junk");
        rc = j ? json_check_tree(j, field, sizeof field) : 1;
        CHECKF(rc == jc[i].rc && !strcmp(field, jc[i].field),
               "json_check_tree: %s: rc %d field '%s'", jc[i].what, rc, field);
        cJSON_Delete(j);
    }
    {
        cJSON *j = cJSON_Parse("{\"a\":{\"b\":1,\"b\":2}}");
        json_check_tree(j, field, sizeof field);
        CHECK(strstr(vv_err_detail(), "/a/b") && strstr(vv_err_detail(), "twice"),
              "json_check_tree: the detail names the pointer and says what is wrong");
        cJSON_Delete(j);
    }
    {
        /* Many members: the repeat found first in document order. */
        char big[2048];
        int bn = snprintf(big, sizeof big, "{");
        for (int i = 0; i < 40; i++)
            bn += snprintf(big + bn, sizeof big - (size_t)bn, "\"k%d\":%d,", i, i);
        snprintf(big + bn, sizeof big - (size_t)bn, "\"k20\":0,\"k3\":0}");
        cJSON *j = cJSON_Parse(big);
        rc = json_check_tree(j, field, sizeof field);
        CHECK(rc == VV_EINVAL && !strcmp(field, "/k20"),
              "json_check_tree: 42 members, the first repeat in document order (/k20)");
        cJSON_Delete(j);
        big[bn - 1] = '}';
        big[bn] = 0;
        j = cJSON_Parse(big);
        rc = json_check_tree(j, field, sizeof field);
        CHECK(j && rc == 0 && field[0] == 0, "json_check_tree: 40 distinct members pass");
        cJSON_Delete(j);
    }
    {
        /* A pointer cut to the field's size is cut between characters. */
        cJSON *j = cJSON_Parse("{\"\xc3\xa9\xc3\xa9\xc3\xa9\":{\"x\":1,\"x\":2}}");
        char small[6];
        rc = json_check_tree(j, small, sizeof small);
        CHECK(rc == VV_EINVAL && !strcmp(small, "/\xc3\xa9\xc3\xa9"),
              "json_check_tree: a pointer cut to 6 bytes keeps whole characters");
        rc = json_check_tree(j, NULL, 0);
        CHECK(rc == VV_EINVAL, "json_check_tree: no field buffer is fine");
        cJSON_Delete(j);
    }
    /* Job specs (vvd run, specs re-read from the store) go through it. */
    const char *uj = "{\"kind\":\"lasso\",\"name\":\"r\xff\",\"generate\":{\"n\":100,\"k\":8,"
                     "\"d\":2},\"lambda_ratio\":0.1}";
    rc = spec_parse_job_text(uj, strlen(uj), &js, field, sizeof field);
    CHECK(rc == VV_EJSON && !strcmp(field, "/name"),
          "spec_parse_job_text: a name of invalid UTF-8 is refused at /name");
    spec_free_job(&js);
    uj = "{\"kind\":\"lasso\",\"generate\":{\"n\":100,\"k\":8,\"d\":2,\"n\":50},"
         "\"lambda_ratio\":0.1}";
    rc = spec_parse_job_text(uj, strlen(uj), &js, field, sizeof field);
    CHECK(rc == VV_EINVAL && !strcmp(field, "/generate/n"),
          "spec_parse_job_text: a key repeated inside generate is refused at /generate/n");
    spec_free_job(&js);
    uj = "{\"kind\":\"lasso\",\"name\":\"\xce\xbb run \xe2\x82\xac\",\"generate\":{\"n\":100,"
         "\"k\":8,\"d\":2},\"lambda_ratio\":0.1}";
    rc = spec_parse_job_text(uj, strlen(uj), &js, field, sizeof field);
    CHECK(rc == 0 && js.lasso.name && !strcmp(js.lasso.name, "\xce\xbb run \xe2\x82\xac"),
          "spec_parse_job_text: a multi-byte name is accepted as it is");
    spec_free_job(&js);
    return tap_done();
}
