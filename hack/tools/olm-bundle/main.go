// Command olm-bundle writes pullpolicy's OLM bundle from manifests/ and checks
// it the way OperatorHub does.
//
//	olm-bundle generate [-version V] [-channel C] ROOT OUT_DIR
//	olm-bundle validate [-k8s-version X.Y] [-allow-warnings] BUNDLE_DIR
//	olm-bundle tojson FILE...   every YAML document of the files, as one JSON array
//
// validate runs the default bundle validators (CSV, CRD, bundle), the
// OperatorHub suite (operatorhub v2, standard capabilities and categories) and
// the good-practices suite of github.com/operator-framework/api. It prints
// every result, one line each, then a summary; exits 1 when any error is
// found, 2 when warnings are found and -allow-warnings is not given.
package main

import (
	"flag"
	"fmt"
	"os"

	apimanifests "github.com/operator-framework/api/pkg/manifests"
	apivalidation "github.com/operator-framework/api/pkg/validation"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "generate":
		generate(os.Args[2:])
	case "validate":
		validate(os.Args[2:])
	case "tojson":
		toJSON(os.Args[2:])
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: olm-bundle generate [-version V] [-channel C] ROOT OUT_DIR\n"+
		"       olm-bundle validate [-k8s-version X.Y] [-allow-warnings] BUNDLE_DIR\n"+
		"       olm-bundle tojson FILE...")
	os.Exit(64)
}

func validate(args []string) {
	flag := flag.NewFlagSet("validate", flag.ExitOnError)
	k8sVersion := flag.String("k8s-version", "", "Kubernetes version the bundle is checked against for removed APIs (e.g. 1.33)")
	allowWarnings := flag.Bool("allow-warnings", false, "exit 0 when there are warnings but no errors")
	_ = flag.Parse(args)
	if flag.NArg() != 1 {
		usage()
	}
	bundle, err := apimanifests.GetBundleFromDir(flag.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "olm-bundle validate: loading %s: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}
	validators := interfaces.Validators{}
	validators = append(validators, apivalidation.DefaultBundleValidators...)
	validators = append(validators,
		apivalidation.OperatorHubV2Validator,
		apivalidation.StandardCapabilitiesValidator,
		apivalidation.StandardCategoriesValidator,
		apivalidation.GoodPracticesValidator,
	)
	objs := bundle.ObjectsToValidate()
	if *k8sVersion != "" {
		objs = append(objs, map[string]string{"k8s-version": *k8sVersion})
	}
	nerr, nwarn := 0, 0
	for _, r := range validators.Validate(objs...) {
		for _, e := range r.Errors {
			nerr++
			fmt.Printf("ERROR   %s: %s\n", r.Name, e.Error())
		}
		for _, w := range r.Warnings {
			nwarn++
			fmt.Printf("WARNING %s: %s\n", r.Name, w.Error())
		}
	}
	fmt.Printf("olm-bundle validate: %s (CSV %s): %d validators, %d errors, %d warnings\n",
		flag.Arg(0), bundle.CSV.GetName(), len(validators), nerr, nwarn)
	if nerr > 0 {
		os.Exit(1)
	}
	if nwarn > 0 && !*allowWarnings {
		os.Exit(2)
	}
}
